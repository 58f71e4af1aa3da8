{#
    Tests on the big incremental tables check the rows the latest build wrote, not every row again: their
    `where` config reads "<column> = __latest__", which becomes "<column> = (select max(<column>) from
    <the tested relation>)". Every row a build writes carries that build's timestamp (updated_at, or
    dbt_valid_from in the snapshot), so a full refresh tests every row and an incremental build tests the
    new and changed ones; keys stay unique across all rows through unique indexes. (dbt documents
    overriding this macro for such placeholders.)
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set where = modules.re.sub(
            '(\\w+)\\s*=\\s*__latest__',
            '\\1 = (select max(\\1) from ' ~ relation ~ ')',
            where) -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
