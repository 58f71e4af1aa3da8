-- The metrics job's cohort metrics (issue 24) read every logged prediction of the unsettled cohorts with
-- the outcome that judges it. Both reads are index-only with these covering indexes: the log's heap rows
-- carry the features (about 800 bytes each), so a scan of a million of them read eight times the bytes
-- the job needs, and the latest outcome per customer came with a heap fetch per outcome for `churned`.
-- The price is one more index for the classifier's COPY to maintain (about 130 bytes per logged row).

create index inference_log_cohort_idx on serving.inference_log (model_name, predicted_at)
    include (model_version, source, probability, customer_id, request_id, item, contract,
             internet_service, senior_citizen);

drop index serving.outcomes_customer_idx;
create index outcomes_customer_idx on serving.outcomes (customer_id, observed_at desc, outcome_id desc)
    include (churned) where customer_id is not null;
drop index serving.outcomes_request_idx;
create index outcomes_request_idx on serving.outcomes (request_id, item, observed_at desc, outcome_id desc)
    include (churned) where request_id is not null;
