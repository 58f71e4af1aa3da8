-- Real traffic (issue 24): every prediction the classifier serves, the outcomes callers feed back, and
-- metrics per prediction cohort once its labels have matured.
--
--   serving.inference_log   one row per scored customer per arm (KServe's payload logger), written by the
--                           classifier off the request path with binary COPY
--   serving.outcomes        what became of a customer or a request (Seldon's feedback): every observation
--                           kept with its time; the latest observation wins
--   monitoring.cohort_metrics  ROC AUC, PR AUC, log loss, Brier and calibration per model version, source,
--                           day or week cohort and slice, provisional until the cohort's labels matured

create schema if not exists serving;

create table serving.inference_log (
    -- A ULID stored as uuid (time-ordered): the id returned in X-Request-Id and in the body.
    request_id     uuid not null,
    -- The customer's place in a batch or stream; 0 for a single prediction.
    item           integer not null default 0,
    predicted_at   timestamptz not null,
    endpoint       text not null,
    -- What the metrics and drift slice by: a single call is `api`, a batch or a stream is `batch`.
    source         text not null,
    -- Which key called: its name, or `anonymous` when the classifier takes calls without a key.
    caller         text not null,
    -- The caller's own id for the customer, when sent; outcomes fed by that id judge this prediction.
    customer_id    text,
    features       jsonb not null,
    -- The slices the cohort metrics are cut by, copied out of the features so they are read without jsonb.
    contract       text not null,
    internet_service text not null,
    senior_citizen boolean not null,
    model_name     text not null,
    model_version  integer not null,
    arm            text not null,
    probability    double precision not null,
    label          boolean not null,
    threshold      double precision not null,
    latency_us     integer not null,
    primary key (request_id, item, arm),
    constraint inference_log_item_check check (item >= 0),
    constraint inference_log_endpoint_check check (endpoint in ('predict', 'explain', 'batch', 'stream')),
    constraint inference_log_source_check check (source in ('api', 'batch')),
    constraint inference_log_caller_check check (length(caller) between 1 and 100),
    constraint inference_log_customer_id_check check (customer_id is null or length(customer_id) between 1 and 128),
    constraint inference_log_arm_check check (arm in ('champion', 'canary', 'shadow')),
    constraint inference_log_probability_check check (probability between 0 and 1),
    constraint inference_log_threshold_check check (threshold between 0 and 1),
    constraint inference_log_label_check check (label = (probability >= threshold)),
    constraint inference_log_latency_check check (latency_us >= 0)
);
create index inference_log_predicted_at_idx on serving.inference_log (predicted_at);
create index inference_log_model_at_idx on serving.inference_log (model_name, model_version, predicted_at);
create index inference_log_customer_idx on serving.inference_log (customer_id) where customer_id is not null;

create table serving.outcomes (
    outcome_id   bigint generated always as identity primary key,
    -- By request (every customer of the request, or one `item` of it) or by the caller's customer id.
    request_id   uuid,
    item         integer,
    customer_id  text,
    churned      boolean not null,
    -- When the outcome was observed (the business's time); the latest observation wins, every one is kept.
    observed_at  timestamptz not null,
    received_at  timestamptz not null default now(),
    source       text not null,
    caller       text not null,
    constraint outcomes_target_check check (request_id is not null or customer_id is not null),
    constraint outcomes_item_check check (item is null or (item >= 0 and request_id is not null)),
    constraint outcomes_customer_id_check check (customer_id is null or length(customer_id) between 1 and 128),
    constraint outcomes_source_check check (source in ('api', 'ingested')),
    constraint outcomes_caller_check check (length(caller) between 1 and 100)
);
create index outcomes_customer_idx on serving.outcomes (customer_id, observed_at desc, outcome_id desc)
    where customer_id is not null;
create index outcomes_request_idx on serving.outcomes (request_id, observed_at desc, outcome_id desc)
    where request_id is not null;
create index outcomes_received_at_idx on serving.outcomes (received_at);

create table monitoring.cohort_metrics (
    cohort_metric_id bigint generated always as identity primary key,
    job_run_id     uuid references ops.job_runs (job_run_id) on delete set null,
    model_name     text not null,
    model_version  integer not null,
    source         text not null,
    cohort         text not null,
    cohort_start   date not null,
    slice          text not null default 'all',
    slice_value    text not null default 'all',
    n_predictions  integer not null,
    n_labelled     integer not null,
    n_positive     integer not null,
    label_coverage double precision not null,
    roc_auc        double precision,
    pr_auc         double precision,
    log_loss       double precision,
    brier          double precision,
    ece            double precision,
    -- Predicted against observed churn rate per probability bin: [{lower, upper, n, mean_predicted, observed_rate}].
    calibration    jsonb not null default '[]',
    -- The cohort's labels have not matured yet (its end + LABEL_MATURITY_DAYS is still ahead).
    provisional    boolean not null,
    matures_at     timestamptz not null,
    computed_at    timestamptz not null default now(),
    foreign key (model_name, model_version) references registry.model_versions (model_name, version),
    constraint cohort_metrics_key unique (model_name, model_version, source, cohort, cohort_start, slice, slice_value),
    constraint cohort_metrics_source_check check (source in ('api', 'batch', 'synthetic', 'ingested')),
    constraint cohort_metrics_cohort_check check (cohort in ('day', 'week')),
    constraint cohort_metrics_slice_check check (slice in ('all', 'contract', 'internet_service', 'senior_citizen')),
    constraint cohort_metrics_counts_check check (
        n_predictions >= 0 and n_labelled between 0 and n_predictions and n_positive between 0 and n_labelled),
    constraint cohort_metrics_coverage_check check (label_coverage between 0 and 1),
    constraint cohort_metrics_range_check check (
        (roc_auc is null or roc_auc between 0 and 1)
        and (pr_auc is null or pr_auc between 0 and 1)
        and (log_loss is null or log_loss >= 0)
        and (brier is null or brier between 0 and 1)
        and (ece is null or ece between 0 and 1))
);
create index cohort_metrics_computed_idx on monitoring.cohort_metrics (computed_at);

-- ---------------------------------------------------------------------------------------------------------
-- grants (V11's roles)
-- ---------------------------------------------------------------------------------------------------------

-- The classifier logs what it served and takes feedback; it reads neither back.
grant usage on schema serving to churn_classifier;
grant insert on serving.inference_log, serving.outcomes to churn_classifier;
grant usage on all sequences in schema serving to churn_classifier;

-- The scheduler's jobs read both (metrics, drift, triggers), ingestion records outcomes, retention deletes.
grant usage on schema serving to churn_scheduler;
grant select, insert, update, delete on all tables in schema serving to churn_scheduler;
grant usage, select on all sequences in schema serving to churn_scheduler;
alter default privileges in schema serving grant select, insert, update, delete on tables to churn_scheduler;
alter default privileges in schema serving grant usage, select on sequences to churn_scheduler;

-- dbt models both as facts.
grant usage on schema serving to churn_dbt;
grant select on all tables in schema serving to churn_dbt;
alter default privileges in schema serving grant select on tables to churn_dbt;

-- The BI tools read monitoring (V6), which now includes cohort_metrics; the raw log (features, callers'
-- ids) stays out of their reach: they read dbt's facts.
grant select on monitoring.cohort_metrics to churn_readonly;
