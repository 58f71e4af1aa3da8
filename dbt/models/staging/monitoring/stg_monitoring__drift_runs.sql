-- One row per drift run: which current data it measured (the warehouse's customers or the classifier's
-- logged traffic) and the dataset verdict.

select
    run_id as drift_run_id,
    model_name,
    model_version,
    source as drift_source,
    window_start,
    window_end,
    n_current,
    n_drifted,
    share_drifted,
    dataset_drift as is_dataset_drift,
    computed_at

from {{ source('monitoring', 'drift_runs') }}
