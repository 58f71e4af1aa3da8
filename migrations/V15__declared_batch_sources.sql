-- The platform's own batches in the inference log (issue 24): the generate loop's synthetic customers and
-- the scoring of landed files call POST /predict/batch too. They declare themselves (`source=synthetic`,
-- `source=ingested`), so the log keeps every prediction served while the real-traffic figures (cohort
-- metrics of `api` and `batch`, drift on logged calls, the dashboards' view) read the callers' only.

alter table serving.inference_log
    drop constraint inference_log_source_check,
    add constraint inference_log_source_check check (source in ('api', 'batch', 'synthetic', 'ingested'));

-- The dashboards' view of the log: callers' traffic only (V14 defined it over every row).
create or replace view monitoring.inference_requests as
select
    request_id,
    item,
    predicted_at,
    endpoint,
    source,
    caller,
    model_name,
    model_version,
    arm,
    probability as churn_probability,
    label as predicted_churn_label,
    threshold,
    latency_us,
    contract,
    internet_service,
    senior_citizen
from serving.inference_log
where source in ('api', 'batch');
