-- One row per drift measurement: one feature of one model version's inputs over one window, with the
-- statistic, its threshold, the verdict and the source of the current data (the warehouse's customers or
-- the classifier's logged traffic; warehouse for rows from before drift runs existed).
with

drift as (

    select * from {{ ref('stg_monitoring__drift') }}

),

runs as (

    select drift_run_id, drift_source from {{ ref('stg_monitoring__drift_runs') }}

),

versions as (

    select model_name, model_version, model_version_key
    from {{ ref('dim_model_version') }}

),

final as (

    select
        drift.drift_id,
        versions.model_version_key,
        {{ date_key('drift.computed_at') }} as computed_date_key,
        drift.model_name,
        drift.model_version,
        coalesce(runs.drift_source, 'warehouse') as drift_source,
        drift.feature_name,
        drift.drift_statistic,
        drift.statistic_value,
        drift.drift_threshold,
        drift.is_drifted,
        drift.statistic_value - drift.drift_threshold as margin_over_threshold,
        drift.window_start,
        drift.window_end,
        drift.n_samples,
        drift.computed_at

    from drift
    inner join versions
        on versions.model_name = drift.model_name
        and versions.model_version = drift.model_version
    left join runs on runs.drift_run_id = drift.drift_run_id

)

select * from final
