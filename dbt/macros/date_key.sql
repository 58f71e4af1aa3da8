{#
    The dim_date key (yyyymmdd as an integer) of a timestamptz, on the UTC calendar whatever the session's
    time zone, so every build (and every person's session) files an instant under the same day.
#}
{% macro date_key(timestamp_column) -%}
    cast(to_char({{ timestamp_column }} at time zone 'UTC', 'YYYYMMDD') as integer)
{%- endmacro %}

{# The UTC calendar day of a timestamptz. #}
{% macro utc_date(timestamp_column) -%}
    cast({{ timestamp_column }} at time zone 'UTC' as date)
{%- endmacro %}
