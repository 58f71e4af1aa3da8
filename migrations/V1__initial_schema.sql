-- The platform's schema: the churn warehouse, the model registry, monitoring and operations.
-- Constraints make bad rows impossible: categories are checked, ranges enforced, and the Telco business
-- rules (no internet => no add-ons; no phone => no multiple lines) hold for every stored customer.

create schema if not exists churn;
create schema if not exists registry;
create schema if not exists monitoring;
create schema if not exists ops;

-- ---------------------------------------------------------------------------------------------------------
-- churn: customers, who synthesized them, how they were classified
-- ---------------------------------------------------------------------------------------------------------

create table churn.customers (
    customer_id       uuid primary key,                 -- a ULID stored as uuid (time-ordered)
    source            text not null,
    external_id       text,                             -- the source file's CustomerID, if any
    country           text not null,
    state             text not null,
    city              text not null,
    zip_code          text not null,
    latitude          double precision not null,
    longitude         double precision not null,
    gender            text not null,
    senior_citizen    boolean not null,
    partner           boolean not null,
    dependents        boolean not null,
    tenure_months     smallint not null,
    phone_service     boolean not null,
    multiple_lines    text not null,
    internet_service  text not null,
    online_security   text not null,
    online_backup     text not null,
    device_protection text not null,
    tech_support      text not null,
    streaming_tv      text not null,
    streaming_movies  text not null,
    contract          text not null,
    paperless_billing boolean not null,
    payment_method    text not null,
    monthly_charges   numeric(10, 2) not null,
    total_charges     numeric(12, 2) not null,
    churn_label       boolean,                          -- the actual outcome, when known
    inserted_at       timestamptz not null default now(),
    constraint customers_source_check check (source in ('synthetic', 'ingested', 'seed')),
    constraint customers_text_check check (
        length(trim(country)) between 1 and 100
        and length(trim(state)) between 1 and 100
        and length(trim(city)) between 1 and 100),
    constraint customers_zip_code_check check (zip_code ~ '^[0-9]{5}$'),
    constraint customers_latitude_check check (latitude between -90 and 90),
    constraint customers_longitude_check check (longitude between -180 and 180),
    constraint customers_gender_check check (gender in ('Female', 'Male')),
    constraint customers_tenure_check check (tenure_months between 0 and 120),
    constraint customers_multiple_lines_check check (multiple_lines in ('No', 'Yes', 'No phone service')),
    constraint customers_internet_service_check check (internet_service in ('DSL', 'Fiber optic', 'No')),
    constraint customers_add_ons_check check (
        online_security in ('No', 'Yes', 'No internet service')
        and online_backup in ('No', 'Yes', 'No internet service')
        and device_protection in ('No', 'Yes', 'No internet service')
        and tech_support in ('No', 'Yes', 'No internet service')
        and streaming_tv in ('No', 'Yes', 'No internet service')
        and streaming_movies in ('No', 'Yes', 'No internet service')),
    constraint customers_contract_check check (contract in ('Month-to-month', 'One year', 'Two year')),
    constraint customers_payment_method_check check (payment_method in (
        'Bank transfer (automatic)', 'Credit card (automatic)', 'Electronic check', 'Mailed check')),
    constraint customers_charges_check check (monthly_charges >= 0 and total_charges >= 0),
    constraint customers_phone_rule check (phone_service = (multiple_lines <> 'No phone service')),
    constraint customers_internet_rule check (
        (internet_service = 'No') = (online_security = 'No internet service')
        and (internet_service = 'No') = (online_backup = 'No internet service')
        and (internet_service = 'No') = (device_protection = 'No internet service')
        and (internet_service = 'No') = (tech_support = 'No internet service')
        and (internet_service = 'No') = (streaming_tv = 'No internet service')
        and (internet_service = 'No') = (streaming_movies = 'No internet service'))
);
create index customers_inserted_at_idx on churn.customers (inserted_at);
create index customers_source_inserted_at_idx on churn.customers (source, inserted_at);

create table churn.synthesized (
    customer_id         uuid primary key references churn.customers (customer_id) on delete cascade,
    synthesizer_name    text not null default 'synthesizer',
    synthesizer_version integer not null,
    seed                bigint,
    synthesized_at      timestamptz not null default now(),
    constraint synthesized_version_check check (synthesizer_version > 0)
);
create index synthesized_at_idx on churn.synthesized (synthesized_at);

create table churn.classified (
    classification_id     bigint generated always as identity primary key,
    customer_id           uuid not null references churn.customers (customer_id) on delete cascade,
    model_name            text not null,
    model_version         integer not null,
    churn_probability     double precision not null,
    predicted_churn_label boolean not null,
    threshold             double precision not null,
    classified_at         timestamptz not null default now(),
    constraint classified_model_version_check check (model_version > 0),
    constraint classified_probability_check check (churn_probability between 0 and 1),
    constraint classified_threshold_check check (threshold between 0 and 1),
    constraint classified_label_check check (predicted_churn_label = (churn_probability >= threshold)),
    -- one prediction per customer and model version makes re-running a batch idempotent
    constraint classified_customer_model_key unique (customer_id, model_name, model_version)
);
create index classified_at_idx on churn.classified (classified_at);
create index classified_model_at_idx on churn.classified (model_name, model_version, classified_at);

-- ---------------------------------------------------------------------------------------------------------
-- registry: MLflow-style registered models, versions, aliases and runs
-- ---------------------------------------------------------------------------------------------------------

create table registry.registered_models (
    name        text primary key,
    description text not null default '',
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint registered_models_name_check check (name ~ '^[a-z0-9][a-z0-9._-]{0,127}$')
);

create table registry.runs (
    run_id               uuid primary key,
    experiment           text not null,
    status               text not null default 'running',
    started_at           timestamptz not null default now(),
    ended_at             timestamptz,
    parent_run_id        uuid references registry.runs (run_id),
    training_rows        bigint,
    training_data_sha256 text,
    code_version         text not null,
    constraint runs_status_check check (status in ('running', 'finished', 'failed', 'killed')),
    constraint runs_ended_check check (
        (status = 'running' and ended_at is null)
        or (status <> 'running' and ended_at is not null and ended_at >= started_at)),
    constraint runs_training_rows_check check (training_rows is null or training_rows >= 0),
    constraint runs_sha256_check check (training_data_sha256 is null or training_data_sha256 ~ '^[0-9a-f]{64}$')
);
create index runs_experiment_started_idx on registry.runs (experiment, started_at);

create table registry.run_params (
    run_id uuid not null references registry.runs (run_id) on delete cascade,
    key    text not null,
    value  text not null,
    primary key (run_id, key),
    constraint run_params_key_check check (length(key) between 1 and 250)
);

create table registry.run_metrics (
    run_id    uuid not null references registry.runs (run_id) on delete cascade,
    key       text not null,
    step      bigint not null default 0,
    value     double precision not null,
    logged_at timestamptz not null default now(),
    primary key (run_id, key, step),
    constraint run_metrics_key_check check (length(key) between 1 and 250)
);

create table registry.run_tags (
    run_id uuid not null references registry.runs (run_id) on delete cascade,
    key    text not null,
    value  text not null,
    primary key (run_id, key),
    constraint run_tags_key_check check (length(key) between 1 and 250)
);

create table registry.model_versions (
    model_name      text not null references registry.registered_models (name) on delete restrict,
    version         integer not null,
    run_id          uuid references registry.runs (run_id),
    artifact_key    text not null,
    artifact_sha256 text not null,
    artifact_size   bigint not null,
    flavor          text not null,
    description     text not null default '',
    metrics         jsonb not null default '{}',
    lineage         jsonb not null default '{}',
    parent_version  integer,
    created_at      timestamptz not null default now(),
    primary key (model_name, version),
    constraint model_versions_version_check check (version > 0),
    constraint model_versions_parent_check check (parent_version is null or parent_version < version),
    constraint model_versions_sha256_check check (artifact_sha256 ~ '^[0-9a-f]{64}$'),
    constraint model_versions_size_check check (artifact_size >= 0),
    constraint model_versions_metrics_check check (jsonb_typeof(metrics) = 'object'),
    constraint model_versions_lineage_check check (jsonb_typeof(lineage) = 'object'),
    constraint model_versions_artifact_key unique (artifact_key)
);
create index model_versions_created_idx on registry.model_versions (model_name, created_at);

create table registry.aliases (
    model_name text not null,
    alias      text not null,
    version    integer not null,
    updated_at timestamptz not null default now(),
    primary key (model_name, alias),
    foreign key (model_name, version) references registry.model_versions (model_name, version),
    constraint aliases_alias_check check (alias ~ '^[a-z][a-z0-9_-]{0,63}$')
);

create table registry.promotion_decisions (
    decision_id       bigint generated always as identity primary key,
    model_name        text not null,
    candidate_version integer not null,
    champion_version  integer,
    metric            text not null,
    candidate_score   double precision,
    champion_score    double precision,
    margin            double precision not null,
    promoted          boolean not null,
    reason            text not null,
    evidence          jsonb not null default '{}',
    decided_at        timestamptz not null default now(),
    foreign key (model_name, candidate_version) references registry.model_versions (model_name, version),
    foreign key (model_name, champion_version) references registry.model_versions (model_name, version),
    constraint promotion_decisions_margin_check check (margin >= 0)
);
create index promotion_decisions_model_idx on registry.promotion_decisions (model_name, decided_at);

-- ---------------------------------------------------------------------------------------------------------
-- monitoring: live model metrics and feature drift
-- ---------------------------------------------------------------------------------------------------------

create table monitoring.model_metrics (
    metric_id     bigint generated always as identity primary key,
    model_name    text not null,
    model_version integer not null,
    metric_type   text not null,
    window_start  timestamptz,
    window_end    timestamptz,
    n_samples     integer not null,
    n_positive    integer not null,
    accuracy      double precision,
    precision     double precision,
    recall        double precision,
    f1            double precision,
    log_loss      double precision,
    roc_auc       double precision,
    pr_auc        double precision,
    brier         double precision,
    computed_at   timestamptz not null default now(),
    foreign key (model_name, model_version) references registry.model_versions (model_name, version),
    constraint model_metrics_type_check check (metric_type in ('training', 'validation', 'test', 'scheduled')),
    constraint model_metrics_window_check check (window_end is null or window_start is null or window_end >= window_start),
    constraint model_metrics_counts_check check (n_samples >= 0 and n_positive between 0 and n_samples),
    constraint model_metrics_range_check check (
        (accuracy is null or accuracy between 0 and 1)
        and (precision is null or precision between 0 and 1)
        and (recall is null or recall between 0 and 1)
        and (f1 is null or f1 between 0 and 1)
        and (log_loss is null or log_loss >= 0)
        and (roc_auc is null or roc_auc between 0 and 1)
        and (pr_auc is null or pr_auc between 0 and 1)
        and (brier is null or brier between 0 and 1))
);
create index model_metrics_model_computed_idx on monitoring.model_metrics (model_name, model_version, computed_at);
create index model_metrics_computed_idx on monitoring.model_metrics (computed_at);

create table monitoring.drift (
    drift_id      bigint generated always as identity primary key,
    model_name    text not null,
    model_version integer not null,
    feature       text not null,
    statistic     text not null,
    value         double precision not null,
    threshold     double precision not null,
    drifted       boolean not null,
    window_start  timestamptz not null,
    window_end    timestamptz not null,
    n_samples     integer not null,
    computed_at   timestamptz not null default now(),
    foreign key (model_name, model_version) references registry.model_versions (model_name, version),
    constraint drift_statistic_check check (statistic in ('psi', 'ks', 'chi2', 'jensen_shannon')),
    constraint drift_window_check check (window_end >= window_start),
    constraint drift_flag_check check (drifted = (value > threshold)),
    constraint drift_samples_check check (n_samples >= 0)
);
create index drift_computed_idx on monitoring.drift (computed_at);
create index drift_feature_computed_idx on monitoring.drift (feature, computed_at);

-- ---------------------------------------------------------------------------------------------------------
-- ops: job history, landed files and the records they were refused for
-- ---------------------------------------------------------------------------------------------------------

create table ops.job_runs (
    job_run_id    uuid primary key,
    job_name      text not null,
    trigger       text not null default 'schedule',
    status        text not null default 'running',
    started_at    timestamptz not null default now(),
    finished_at   timestamptz,
    rows_affected bigint,
    error         text,
    details       jsonb not null default '{}',
    constraint job_runs_trigger_check check (trigger in ('schedule', 'manual', 'event')),
    constraint job_runs_status_check check (status in ('running', 'succeeded', 'failed', 'skipped')),
    constraint job_runs_finished_check check (
        (status = 'running' and finished_at is null)
        or (status <> 'running' and finished_at is not null and finished_at >= started_at)),
    constraint job_runs_error_check check ((status = 'failed') = (error is not null)),
    constraint job_runs_rows_check check (rows_affected is null or rows_affected >= 0)
);
create index job_runs_name_started_idx on ops.job_runs (job_name, started_at desc);
create index job_runs_started_idx on ops.job_runs (started_at);

create table ops.ingested_files (
    file_id       uuid primary key,
    object_key    text not null,
    sha256        text not null,
    rows_total    bigint not null,
    rows_accepted bigint not null,
    rows_rejected bigint not null,
    ingested_at   timestamptz not null default now(),
    constraint ingested_files_sha256_check check (sha256 ~ '^[0-9a-f]{64}$'),
    constraint ingested_files_counts_check check (
        rows_accepted >= 0 and rows_rejected >= 0 and rows_total = rows_accepted + rows_rejected),
    -- the same bytes are never ingested twice
    constraint ingested_files_sha256_key unique (sha256)
);
create index ingested_files_at_idx on ops.ingested_files (ingested_at);

create table ops.rejected_records (
    rejected_id bigint generated always as identity primary key,
    file_id     uuid not null references ops.ingested_files (file_id) on delete cascade,
    line_number bigint not null,
    raw_record  text not null,
    errors      jsonb not null,
    rejected_at timestamptz not null default now(),
    constraint rejected_records_line_check check (line_number > 0),
    constraint rejected_records_errors_check check (jsonb_typeof(errors) = 'array' and jsonb_array_length(errors) > 0),
    constraint rejected_records_file_line_key unique (file_id, line_number)
);
