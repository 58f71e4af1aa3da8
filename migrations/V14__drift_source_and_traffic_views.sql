-- Real traffic downstream (issue 24): drift measured on the classifier's logged traffic beside the
-- warehouse's, and the views the BI tools read the log and the matured metrics through.
--
--   monitoring.drift_runs.source   what the run's current data was: `warehouse` (the customers written in
--                                  the window: synthetic and ingested, every run before this migration) or
--                                  `api` (the champion's logged traffic, single and batch calls)
--   monitoring.inference_requests  the log without the features and the callers' customer ids
--   monitoring.outcome_arrivals    the outcomes without whose they are

alter table monitoring.drift_runs
    add column source text not null default 'warehouse',
    add constraint drift_runs_source_check check (source in ('warehouse', 'api', 'batch'));
create index drift_runs_source_idx on monitoring.drift_runs (model_name, source, computed_at desc);

-- What the dashboards show of serving.inference_log: volume, latency, probabilities, per source and arm.
-- The features and the caller's customer id stay out (the BI role never reads serving); the key's name
-- stays in, as it says which client sends the traffic.
create view monitoring.inference_requests as
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
from serving.inference_log;

-- How many outcomes arrived, when and from where: label arrival on dashboards, without whose they are.
create view monitoring.outcome_arrivals as
select
    outcome_id,
    (request_id is not null) as by_request,
    churned as actual_churn_label,
    observed_at,
    received_at,
    source
from serving.outcomes;

grant select on monitoring.inference_requests, monitoring.outcome_arrivals to churn_readonly;
