{{
    config(
        materialized='incremental',
        unique_key='prediction_key',
        incremental_strategy='merge',
        merge_exclude_columns=['prediction_key', 'loaded_at'],
        on_schema_change='fail',
        post_hook="{{ refresh_statistics(this, ['updated_at', 'classified_at']) }}",
        indexes=[
            {'columns': ['prediction_key'], 'unique': true},
            {'columns': ['classified_at']},
            {'columns': ['classification_id'], 'unique': true},
            {'columns': ['updated_at']},
        ],
    )
}}
-- One row per customer per model version: the prediction (probability, threshold, predicted label) against
-- the actual label, with the customer's charges and tenure, and keys to every dimension.
--
-- Incremental: each build reads the predictions not loaded yet that were classified since the newest one
-- already loaded, less a lookback window (var prediction_lookback_hours) that catches rows committed late,
-- plus every prediction of a customer whose account changed since the last build (seen by the customers
-- snapshot), so a label that arrives later reaches the fact. Rows are merged on prediction_key; loaded_at
-- is never rewritten.
--
-- Customers are read from the snapshot's current rows, like dim_customer and dim_location, so the fact
-- and its dimensions see the same customers; a prediction whose customer is newer than this build's
-- snapshot, or whose model version is not in dim_model_version, waits for the next build (it is still
-- inside the lookback window then).

with

{% if is_incremental() %}
watermark as (

    select
        coalesce(max(classified_at), '-infinity'::timestamptz)
            - interval '{{ var("prediction_lookback_hours") }} hours' as classified_after,
        coalesce(max(updated_at), '-infinity'::timestamptz) as changed_after

    from {{ this }}

),

changed_customers as (

    -- a customer's snapshot row closed since the last build: their account or label changed
    select distinct customer_id
    from {{ ref('customers_snapshot') }}
    where dbt_valid_to > (select changed_after from watermark)

),

predictions as (

    -- new predictions: inside the lookback window and not loaded yet (predictions never change, so one
    -- already loaded is read again only through its customer, below)
    select *
    from {{ ref('stg_churn__classified') }} as classified
    where classified.classified_at >= (select classified_after from watermark)
        and not exists (
            select 1 from {{ this }} as loaded
            where loaded.classification_id = classified.classification_id
        )

    union

    select *
    from {{ ref('stg_churn__classified') }}
    where customer_id in (select customer_id from changed_customers)

),
{% else %}
predictions as (

    select * from {{ ref('stg_churn__classified') }}

),
{% endif %}

customers as (

    select * from {{ ref('customers_snapshot') }}
    where dbt_valid_to is null

),

dim_customer as (

    select customer_id, customer_key from {{ ref('dim_customer') }}

),

dim_location as (

    select zip_code, location_key from {{ ref('dim_location') }}

),

dim_model_version as (

    select model_name, model_version, model_version_key from {{ ref('dim_model_version') }}

),

final as (

    select
        {{ surrogate_key(['predictions.customer_id', 'predictions.model_name', 'predictions.model_version']) }} as prediction_key,
        predictions.classification_id,

        -- dimensions
        dim_customer.customer_key,
        dim_location.location_key,
        {{ surrogate_key([
            'customers.has_phone_service', 'customers.multiple_lines', 'customers.internet_service',
            'customers.online_security', 'customers.online_backup', 'customers.device_protection',
            'customers.tech_support', 'customers.streaming_tv', 'customers.streaming_movies',
        ]) }} as services_key,
        {{ surrogate_key(['customers.contract', 'customers.has_paperless_billing', 'customers.payment_method']) }} as contract_key,
        dim_model_version.model_version_key,
        {{ date_key('predictions.classified_at') }} as prediction_date_key,

        -- natural keys, for reading without joins
        predictions.customer_id,
        predictions.model_name,
        predictions.model_version,

        -- the prediction against the outcome
        predictions.churn_probability,
        predictions.threshold as decision_threshold,
        predictions.predicted_churn_label,
        customers.actual_churn_label,
        case
            when customers.actual_churn_label is null then 'unlabelled'
            when predictions.predicted_churn_label and customers.actual_churn_label then 'true positive'
            when predictions.predicted_churn_label then 'false positive'
            when customers.actual_churn_label then 'false negative'
            else 'true negative'
        end as prediction_outcome,

        -- the customer's account
        customers.tenure_months,
        customers.tenure_band,
        customers.monthly_charges,
        customers.total_charges,

        -- timestamps
        predictions.classified_at,
        now() as loaded_at,
        now() as updated_at

    from predictions
    inner join customers on customers.customer_id = predictions.customer_id
    inner join dim_customer on dim_customer.customer_id = predictions.customer_id
    inner join dim_location on dim_location.zip_code = customers.zip_code
    inner join dim_model_version
        on dim_model_version.model_name = predictions.model_name
        and dim_model_version.model_version = predictions.model_version

)

select * from final
