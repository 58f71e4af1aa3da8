-- One row per scheduler job run, with its duration.

select
    job_run_id,
    job_name,
    trigger as job_trigger,
    status as job_status,
    started_at,
    finished_at,
    extract(epoch from finished_at - started_at) as duration_seconds,
    rows_affected,
    error as error_message

from {{ source('ops', 'job_runs') }}
