-- One row per node per recorded dbt invocation.

select
    invocation_id,
    unique_id as node_unique_id,
    resource_type,
    status as node_status,
    started_at,
    completed_at,
    execution_seconds,
    rows_affected,
    failures,
    message as node_message,
    relation_name

from {{ source('ops', 'dbt_node_results') }}
