-- One row per drift measurement: one feature of one model version's inputs over one window.

select
    drift_id,
    run_id as drift_run_id,
    model_name,
    model_version,
    feature as feature_name,
    statistic as drift_statistic,
    value as statistic_value,
    threshold as drift_threshold,
    drifted as is_drifted,
    window_start,
    window_end,
    n_samples,
    computed_at

from {{ source('monitoring', 'drift') }}
