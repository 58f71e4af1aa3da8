-- Every prediction's probability and threshold are probabilities: in [0, 1] and not NaN. Like the fact's
-- other tests, it reads the rows the latest build wrote (all of them after a full refresh).
select
    prediction_key,
    customer_id,
    model_name,
    model_version,
    churn_probability,
    decision_threshold

from {{ ref('fct_churn_prediction') }}
where updated_at = (select max(updated_at) from {{ ref('fct_churn_prediction') }})
    and (
        not (churn_probability between 0 and 1)
        or not (decision_threshold between 0 and 1)
        or churn_probability = 'NaN'::double precision
        or decision_threshold = 'NaN'::double precision
    )
