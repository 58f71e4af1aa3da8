-- A prediction's label is churn exactly when its probability reaches its threshold, and that threshold is
-- the one its model version was registered with (registry metrics.threshold), when the registry has one.
-- The database checks the first rule on each row; only this test checks the second.
with

predictions as (

    -- the rows the latest build wrote (all of them after a full refresh)
    select * from {{ ref('fct_churn_prediction') }}
    where updated_at = (select max(updated_at) from {{ ref('fct_churn_prediction') }})

),

versions as (

    select model_version_key, decision_threshold as registered_threshold
    from {{ ref('dim_model_version') }}

)

select
    predictions.prediction_key,
    predictions.customer_id,
    predictions.model_name,
    predictions.model_version,
    predictions.churn_probability,
    predictions.decision_threshold,
    versions.registered_threshold,
    predictions.predicted_churn_label

from predictions
left join versions on versions.model_version_key = predictions.model_version_key
where predictions.predicted_churn_label <> (predictions.churn_probability >= predictions.decision_threshold)
    or abs(predictions.decision_threshold - versions.registered_threshold) > 1e-9
