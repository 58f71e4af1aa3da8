{#
    Snapshot timestamps as timestamptz, like every other timestamp in the warehouse. dbt-postgres casts
    now() to a timestamp without time zone, whose meaning would depend on the session's time zone.
#}
{% macro postgres__snapshot_get_time() -%}
    {{ current_timestamp() }}
{%- endmacro %}
