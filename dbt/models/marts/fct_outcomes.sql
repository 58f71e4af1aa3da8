{{
    config(
        materialized='incremental',
        unique_key='outcome_id',
        incremental_strategy='merge',
        merge_exclude_columns=['outcome_id', 'loaded_at'],
        on_schema_change='fail',
        post_hook="{{ refresh_statistics(this, ['updated_at', 'received_at']) }}",
        indexes=[
            {'columns': ['outcome_id'], 'unique': true},
            {'columns': ['received_at']},
            {'columns': ['updated_at']},
        ],
    )
}}
-- One row per outcome observed: whether a customer the classifier scored churned, fed back by request id
-- (POST /feedback) or by the caller's customer id (POST /feedback, or an ingested file's churn label),
-- with when it was observed and received. Every observation is kept; fct_inference_log carries the latest
-- one per prediction.
--
-- Incremental: outcomes never change, so a build adds those received since the newest loaded one, less
-- var inference_lookback_hours (an identity's order is not its commit order), not loaded yet.

with

outcomes as (

    select *
    from {{ ref('stg_serving__outcomes') }} as outcomes
    {% if is_incremental() %}
    where outcomes.received_at >= (
            select coalesce(max(received_at), '-infinity'::timestamptz)
                - interval '{{ var("inference_lookback_hours") }} hours'
            from {{ this }}
        )
        and not exists (
            select 1 from {{ this }} as loaded where loaded.outcome_id = outcomes.outcome_id
        )
    {% endif %}

),

final as (

    select
        outcome_id,
        {{ date_key('observed_at') }} as observed_date_key,
        {{ date_key('received_at') }} as received_date_key,
        case when request_id is not null then 'request' else 'customer' end as fed_by,
        request_id,
        item,
        caller_customer_id,
        actual_churn_label,
        observed_at,
        received_at,
        extract(epoch from received_at - observed_at) / 86400.0 as days_to_receive,
        outcome_source,
        caller,
        now() as loaded_at,
        now() as updated_at

    from outcomes

)

select * from final
