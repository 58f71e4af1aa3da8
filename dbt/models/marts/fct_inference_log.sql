{{
    config(
        materialized='incremental',
        unique_key='inference_key',
        incremental_strategy='merge',
        merge_exclude_columns=['inference_key', 'loaded_at'],
        on_schema_change='fail',
        post_hook="{{ refresh_statistics(this, ['updated_at', 'predicted_at']) }}",
        indexes=[
            {'columns': ['inference_key'], 'unique': true},
            {'columns': ['predicted_at']},
            {'columns': ['updated_at']},
            {'columns': ['request_id']},
            {'columns': ['caller_customer_id']},
        ],
    )
}}
-- One row per customer the classifier scored for a caller, per arm (champion, canary, shadow): who called,
-- through which endpoint, the model version, probability, label, threshold and latency, the slices the
-- cohort metrics cut by, and the outcome fed back for it (the latest observation wins). Not the features:
-- the raw log stays in serving.
--
-- Incremental: each build reads the predictions logged since the newest one loaded, less a lookback
-- window (var inference_lookback_hours) that catches rows the classifier's queue committed late, plus
-- every prediction an outcome received since the last build judges (by request id or by the caller's
-- customer id), so outcomes that arrive weeks later reach the fact. Rows are merged on inference_key;
-- loaded_at is never rewritten.
--
-- Callers' traffic only (api, batch): the platform's own batches (synthetic, ingested) are in the log too,
-- and their predictions are fct_churn_prediction's.

with

callers as (

    select * from {{ ref('stg_serving__inference_log') }}
    where traffic_source in ('api', 'batch')

),

{% if is_incremental() %}
watermark as (

    select
        coalesce(max(predicted_at), '-infinity'::timestamptz)
            - interval '{{ var("inference_lookback_hours") }} hours' as predicted_after,
        coalesce(max(updated_at), '-infinity'::timestamptz)
            - interval '{{ var("inference_lookback_hours") }} hours' as fed_after

    from {{ this }}

),

fed as (

    select request_id, caller_customer_id
    from {{ ref('stg_serving__outcomes') }}
    where received_at > (select fed_after from watermark)

),

logged as (

    select *
    from callers as log
    where log.predicted_at >= (select predicted_after from watermark)
        and not exists (
            select 1 from {{ this }} as loaded
            where loaded.request_id = log.request_id
                and loaded.item = log.item
                and loaded.arm = log.arm
        )

    union

    select *
    from callers
    where request_id in (select request_id from fed where request_id is not null)

    union

    select *
    from callers
    where caller_customer_id in (select caller_customer_id from fed where caller_customer_id is not null)

),
{% else %}
logged as (

    select * from callers

),
{% endif %}

dim_model_version as (

    select model_name, model_version, model_version_key from {{ ref('dim_model_version') }}

),

final as (

    select
        {{ surrogate_key(['logged.request_id', 'logged.item', 'logged.arm']) }} as inference_key,
        logged.request_id,
        logged.item,
        logged.arm,

        -- dimensions
        dim_model_version.model_version_key,
        {{ date_key('logged.predicted_at') }} as prediction_date_key,

        -- the call
        logged.predicted_at,
        logged.endpoint,
        logged.traffic_source,
        logged.caller,
        logged.caller_customer_id,
        logged.latency_us,
        logged.latency_us / 1000.0 as latency_ms,

        -- the prediction
        logged.model_name,
        logged.model_version,
        logged.churn_probability,
        logged.threshold as decision_threshold,
        logged.predicted_churn_label,

        -- the slices
        logged.contract,
        logged.internet_service,
        logged.is_senior_citizen,

        -- the outcome fed back
        outcome.actual_churn_label,
        outcome.observed_at as outcome_observed_at,
        case
            when outcome.actual_churn_label is null then 'unlabelled'
            when logged.predicted_churn_label and outcome.actual_churn_label then 'true positive'
            when logged.predicted_churn_label then 'false positive'
            when outcome.actual_churn_label then 'false negative'
            else 'true negative'
        end as prediction_outcome,

        now() as loaded_at,
        now() as updated_at

    from logged
    inner join dim_model_version
        on dim_model_version.model_name = logged.model_name
        and dim_model_version.model_version = logged.model_version
    left join lateral (
        -- the latest observation of the request's item (or the whole request), or of the customer at or
        -- after the prediction (one observed before it describes the customer's past): the metrics job's rule
        select judged.actual_churn_label, judged.observed_at
        from (
            select outcome_id, actual_churn_label, observed_at
            from {{ ref('stg_serving__outcomes') }} as by_request
            where by_request.request_id = logged.request_id
                and (by_request.item is null or by_request.item = logged.item)

            union all

            select outcome_id, actual_churn_label, observed_at
            from {{ ref('stg_serving__outcomes') }} as by_customer
            where by_customer.caller_customer_id = logged.caller_customer_id
                and by_customer.observed_at >= logged.predicted_at
        ) as judged
        order by judged.observed_at desc, judged.outcome_id desc
        limit 1
    ) as outcome on true

)

select * from final
