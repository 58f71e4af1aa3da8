-- One row per customer per model version: the prediction the classifier made.
-- A single select, not the source/renamed CTE pair: PostgreSQL then sees through the view to the
-- table's indexes (min/max, ordered scans), which CTE-wrapped views hide from it.

select
    classification_id,
    customer_id,
    model_name,
    model_version,
    churn_probability,
    predicted_churn_label,
    threshold,
    classified_at

from {{ source('churn', 'classified') }}
