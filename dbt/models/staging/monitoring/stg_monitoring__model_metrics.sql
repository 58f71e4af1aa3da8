-- One row per computed set of model metrics (one model version, metric type and window).

select
    metric_id,
    model_name,
    model_version,
    metric_type,
    window_start,
    window_end,
    n_samples,
    n_positive,
    accuracy,
    precision as precision_score,
    recall,
    f1,
    log_loss,
    roc_auc,
    pr_auc,
    brier,
    computed_at

from {{ source('monitoring', 'model_metrics') }}
