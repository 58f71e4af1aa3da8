-- One row per observed outcome: a request's (one item, or every item when item is null) or a caller's
-- customer's churn, observed at a time; every observation is kept.

select
    outcome_id,
    request_id,
    item,
    customer_id as caller_customer_id,
    churned as actual_churn_label,
    observed_at,
    received_at,
    source as outcome_source,
    caller

from {{ source('serving', 'outcomes') }}
