-- One row per computed set of model metrics: one model version, metric type (training, validation,
-- test, scheduled) and window, with the change in ROC AUC since the version was registered.
with

metrics as (

    select * from {{ ref('stg_monitoring__model_metrics') }}

),

versions as (

    select model_name, model_version, model_version_key, test_roc_auc
    from {{ ref('dim_model_version') }}

),

final as (

    select
        metrics.metric_id,
        versions.model_version_key,
        {{ date_key('metrics.computed_at') }} as computed_date_key,
        metrics.model_name,
        metrics.model_version,
        metrics.metric_type,
        metrics.window_start,
        metrics.window_end,
        metrics.n_samples,
        metrics.n_positive,
        case when metrics.n_samples > 0 then metrics.n_positive::double precision / metrics.n_samples end as positive_rate,
        metrics.accuracy,
        metrics.precision_score,
        metrics.recall,
        metrics.f1,
        metrics.log_loss,
        metrics.roc_auc,
        metrics.pr_auc,
        metrics.brier,
        metrics.roc_auc - versions.test_roc_auc as roc_auc_change_since_registration,
        metrics.computed_at

    from metrics
    inner join versions
        on versions.model_name = metrics.model_name
        and versions.model_version = metrics.model_version

)

select * from final
