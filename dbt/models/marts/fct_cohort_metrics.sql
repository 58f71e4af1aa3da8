-- One row per model version, traffic source (api, batch, synthetic, ingested), prediction cohort (a day or
-- a week of predictions) and slice (all, contract, internet service, senior citizen): the figures on the
-- cohort's labelled predictions, marked provisional until its labels have matured. What the BI tools
-- chart as matured ROC AUC by cohort and by slice.
with

cohorts as (

    select * from {{ ref('stg_monitoring__cohort_metrics') }}

),

versions as (

    select model_name, model_version, model_version_key
    from {{ ref('dim_model_version') }}

),

final as (

    select
        cohorts.cohort_metric_id,
        versions.model_version_key,
        cast(to_char(cohorts.cohort_start, 'YYYYMMDD') as integer) as cohort_date_key,
        cohorts.model_name,
        cohorts.model_version,
        cohorts.traffic_source,
        cohorts.cohort_grain,
        cohorts.cohort_start,
        cohorts.slice_name,
        cohorts.slice_value,
        cohorts.n_predictions,
        cohorts.n_labelled,
        cohorts.n_positive,
        cohorts.label_coverage,
        cohorts.roc_auc,
        cohorts.pr_auc,
        cohorts.log_loss,
        cohorts.brier,
        cohorts.expected_calibration_error,
        cohorts.is_provisional,
        case when cohorts.is_provisional then 'provisional' else 'matured' end as maturity,
        cohorts.matures_at,
        cohorts.computed_at

    from cohorts
    inner join versions
        on versions.model_name = cohorts.model_name
        and versions.model_version = cohorts.model_version

)

select * from final
