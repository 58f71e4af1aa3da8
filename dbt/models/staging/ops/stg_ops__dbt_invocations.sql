-- One row per recorded dbt invocation.

select
    invocation_id,
    job_run_id,
    command as dbt_command,
    status as invocation_status,
    exit_code,
    dbt_version,
    started_at,
    generated_at,
    elapsed_seconds,
    invocation_command

from {{ source('ops', 'dbt_invocations') }}
