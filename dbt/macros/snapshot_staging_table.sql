{#
    dbt's snapshot step joins the snapshot's query with the snapshot's current rows to find inserts and
    updates. As written by dbt, that reads every current row (a million here, materialized and sorted)
    even when the query returns a few thousand changed customers: 3-4 s of every build. When hard deletes
    are ignored, only current rows whose key the query returns can match, so this hands dbt's own staging
    SQL just those (looked up by key through the snapshot's unique index on current rows) and changes
    nothing else. With hard deletes tracked (`invalidate`, `new_record`) every current row matters and
    dbt's SQL runs as is.
#}
{% macro postgres__snapshot_staging_table(strategy, source_sql, target_relation) -%}
    {%- if strategy.hard_deletes == 'ignore' and not (strategy.unique_key | is_list) -%}
        {%- set current_rows_for_query_keys -%}
            (
                select * from {{ target_relation }}
                where {{ strategy.unique_key }} in (select {{ strategy.unique_key }} from snapshot_query)
            ) as current_rows_for_query_keys
        {%- endset -%}
        {{ return(default__snapshot_staging_table(strategy, source_sql, current_rows_for_query_keys)) }}
    {%- else -%}
        {{ return(default__snapshot_staging_table(strategy, source_sql, target_relation)) }}
    {%- endif -%}
{%- endmacro %}
