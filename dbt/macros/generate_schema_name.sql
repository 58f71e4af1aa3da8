{#
    Custom schema names are used as they are (staging, marts, snapshots), not prefixed with the target's
    schema as dbt does by default (<target>_staging): the warehouse has exactly these schemas, and BI tools
    and grants name them.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
