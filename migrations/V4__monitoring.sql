-- Monitoring that matches the tools users know: every drift statistic Evidently's default rules choose
-- (with PSI beside each), a per-run dataset summary, calibration tables, and each model version's
-- training-data profile (the drift reference), stored when the version is registered.

-- Drift: the statistics Evidently picks (ks, chisquare, z, wasserstein, jensenshannon), PSI beside each,
-- the verdict's direction depending on the test (p-values drift below the threshold, distances at or above).
alter table monitoring.drift drop constraint drift_statistic_check;
alter table monitoring.drift drop constraint drift_flag_check;
alter table monitoring.drift
    add column run_id uuid,
    add column column_type text,
    add column psi double precision,
    add column n_reference integer,
    add constraint drift_statistic_check check (statistic in
        ('psi', 'ks', 'chi2', 'jensen_shannon', 'chisquare', 'z', 'wasserstein', 'jensenshannon')),
    add constraint drift_column_type_check check (column_type is null or column_type in ('numerical', 'categorical')),
    add constraint drift_flag_check check (
        drifted = case when statistic in ('ks') then value <= threshold
                       when statistic in ('chisquare', 'chi2', 'z') then value < threshold
                       else value >= threshold end);
create index drift_run_idx on monitoring.drift (run_id);

-- One row per drift run: the dataset-level verdict and the prediction drift.
create table monitoring.drift_runs (
    run_id               uuid primary key,
    job_run_id           uuid references ops.job_runs (job_run_id) on delete set null,
    model_name           text not null,
    model_version        integer not null,
    window_start         timestamptz not null,
    window_end           timestamptz not null,
    n_reference          integer not null,
    n_current            integer not null,
    n_columns            integer not null,
    n_drifted            integer not null,
    share_drifted        double precision not null,
    drift_share          double precision not null,
    dataset_drift        boolean not null,
    prediction_statistic text,
    prediction_score     double precision,
    prediction_drifted   boolean,
    computed_at          timestamptz not null default now(),
    foreign key (model_name, model_version) references registry.model_versions (model_name, version),
    constraint drift_runs_window_check check (window_end >= window_start),
    constraint drift_runs_counts_check check (
        n_reference >= 0 and n_current >= 0 and n_drifted between 0 and n_columns),
    constraint drift_runs_share_check check (share_drifted between 0 and 1 and drift_share > 0 and drift_share <= 1),
    constraint drift_runs_verdict_check check (dataset_drift = (share_drifted >= drift_share))
);
create index drift_runs_computed_idx on monitoring.drift_runs (computed_at);
alter table monitoring.drift
    add constraint drift_run_fk foreign key (run_id) references monitoring.drift_runs (run_id) on delete cascade;

-- Live metrics per window: which run computed them and how long the window was.
alter table monitoring.model_metrics
    add column job_run_id uuid references ops.job_runs (job_run_id) on delete set null,
    add column window_name text,
    add column threshold double precision,
    add column ece double precision,
    add constraint model_metrics_ece_check check (ece is null or ece between 0 and 1);

-- Calibration: predicted vs observed churn rate per probability bin, per metrics row.
create table monitoring.calibration (
    metric_id      bigint not null references monitoring.model_metrics (metric_id) on delete cascade,
    bin            integer not null,
    lower_bound    double precision not null,
    upper_bound    double precision not null,
    n_samples      integer not null,
    n_positive     integer not null,
    mean_predicted double precision,
    observed_rate  double precision,
    primary key (metric_id, bin),
    constraint calibration_bounds_check check (lower_bound >= 0 and upper_bound <= 1 and lower_bound < upper_bound),
    constraint calibration_counts_check check (n_samples >= 0 and n_positive between 0 and n_samples)
);

-- Each version's training-data profile (the drift reference), as stored with the version.
alter table registry.model_versions
    add column profile_key text,
    add column profile_sha256 text,
    add constraint model_versions_profile_check check (
        (profile_key is null) = (profile_sha256 is null)
        and (profile_sha256 is null or profile_sha256 ~ '^[0-9a-f]{64}$'));

-- Retraining: what triggered a run of the retrain job, for the cooldown and the dashboards.
create table ops.retrain_triggers (
    trigger_id   bigint generated always as identity primary key,
    job_run_id   uuid references ops.job_runs (job_run_id) on delete set null,
    reason       text not null,
    evidence     jsonb not null default '{}',
    triggered_at timestamptz not null default now(),
    constraint retrain_triggers_reason_check check (reason in
        ('schedule', 'manual', 'dataset_drift', 'live_auc_drop', 'new_labels', 'bootstrap'))
);
create index retrain_triggers_at_idx on ops.retrain_triggers (triggered_at);

-- Labelled rows: when a customer's label became known (ingested outcomes count toward retraining).
alter table churn.customers
    add column labelled_at timestamptz;
create index customers_labelled_at_idx on churn.customers (labelled_at) where labelled_at is not null;
