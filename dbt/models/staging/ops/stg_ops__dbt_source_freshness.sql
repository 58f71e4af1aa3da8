-- One row per source table per recorded freshness check.

select
    invocation_id,
    unique_id as source_unique_id,
    status as freshness_status,
    max_loaded_at,
    snapshotted_at,
    age_seconds,
    error as error_message

from {{ source('ops', 'dbt_source_freshness') }}
