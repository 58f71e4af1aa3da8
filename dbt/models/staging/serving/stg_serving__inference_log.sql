-- One row per customer scored per arm: what the classifier served, without the raw features (the slices
-- the metrics cut by are columns of their own).
-- A single select, not the source/renamed CTE pair: PostgreSQL then sees through the view to the
-- table's indexes (min/max, ordered scans), which CTE-wrapped views hide from it.

select
    request_id,
    item,
    arm,
    predicted_at,
    endpoint,
    source as traffic_source,
    caller,
    customer_id as caller_customer_id,
    model_name,
    model_version,
    probability as churn_probability,
    label as predicted_churn_label,
    threshold,
    latency_us,
    contract,
    internet_service,
    senior_citizen as is_senior_citizen

from {{ source('serving', 'inference_log') }}
