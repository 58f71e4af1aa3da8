-- One row per model version, traffic source, prediction cohort and slice, measured on matured (or,
-- provisionally, maturing) labels.

select
    cohort_metric_id,
    model_name,
    model_version,
    source as traffic_source,
    cohort as cohort_grain,
    cohort_start,
    slice as slice_name,
    slice_value,
    n_predictions,
    n_labelled,
    n_positive,
    label_coverage,
    roc_auc,
    pr_auc,
    log_loss,
    brier,
    ece as expected_calibration_error,
    provisional as is_provisional,
    matures_at,
    computed_at

from {{ source('monitoring', 'cohort_metrics') }}
