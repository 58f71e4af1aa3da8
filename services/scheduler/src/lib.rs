//! The scheduler service: the platform's control plane. It runs the jobs of `churn-jobs` on their cron
//! schedules (or continuously), trains a first champion when there is none, and serves the jobs API and
//! an MLflow-compatible registry API (`routes`).

mod mlflow;
mod routes;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use churn_config::{ConfigError, Env, JobSchedule, JobSettings, SchedulerConfig};
use churn_core::Backoff;
use churn_jobs::dbt::DbtJob;
use churn_jobs::generate::{Generate, GenerateMode, GenerateParams};
use churn_jobs::{Job, JobSpec, Runner, Schedule};
use churn_registry::Registry;
use churn_service::health::ReadyCache;
use churn_service::{Application, Infra};
use tokio_cron_scheduler::JobScheduler;

pub use routes::router;

/// The variable naming this service's port.
pub const PORT_VAR: &str = SchedulerConfig::PORT_VAR;

/// Reads the service's configuration; an invalid variable is an error naming it.
pub fn config_from_env(env: &Env) -> Result<SchedulerConfig, ConfigError> {
    SchedulerConfig::from_env(env)
}

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub infra: Infra,
    pub runner: Runner,
    /// The cron scheduler's id of each scheduled job, to tell its next tick.
    pub ticks: Arc<BTreeMap<String, uuid::Uuid>>,
    pub cron: Option<JobScheduler>,
    /// The scoped tokens: ADMIN_TOKEN (jobs, ingestion), REGISTRY_TOKEN (MLflow alias writes) and
    /// READ_TOKEN (reads, when set).
    pub tokens: churn_service::auth::Tokens,
    /// Files larger than this are ingested in the background by `POST /ingest` (INGEST_ASYNC_BYTES).
    pub ingest_async_bytes: u64,
    pub synthesizer: churn_config::ServiceUrl,
    pub classifier: churn_config::ServiceUrl,
    pub http: reqwest::Client,
    pub ready: Arc<ReadyCache>,
    /// Where the dbt job writes the docs site served at `/dbt/docs/`.
    pub dbt_docs: Option<std::path::PathBuf>,
    /// Landed files, for `POST /ingest` and `POST /events/s3` (the `ingest` job's code path).
    pub ingestor: churn_ingest::Ingestor,
    /// Files under `score/`, for `POST /events/s3` (the `score` job's code path).
    pub scorer: churn_ingest::Scorer,
    /// The secret MinIO's webhook sends (S3_EVENT_SECRET); the route is disabled without one.
    pub event_secret: Option<churn_config::Secret>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("runner", &self.runner)
            .finish_non_exhaustive()
    }
}

fn spec(name: &'static str, settings: &JobSettings) -> JobSpec {
    JobSpec {
        name,
        schedule: match &settings.schedule {
            JobSchedule::Cron(expr) => Schedule::Cron(expr.clone()),
            JobSchedule::Continuous => Schedule::Continuous,
            JobSchedule::Manual => Schedule::OnDemand,
        },
        enabled: settings.enabled,
        timeout: settings.timeout,
        retries: settings.retries,
        retry_delay: settings.retry_delay,
        max_retry_delay: Duration::from_secs(300).max(settings.retry_delay),
    }
}

/// Jobs with their specs, as the runner takes them.
type JobList = Vec<(JobSpec, Arc<dyn Job>)>;

/// The jobs this scheduler runs (their parameters checked), where the dbt job writes its docs site, and
/// the retrain requests the monitoring jobs send.
struct Jobs {
    jobs: JobList,
    dbt_docs: Option<std::path::PathBuf>,
    retrain_requests: tokio::sync::mpsc::Receiver<()>,
    ingestor: churn_ingest::Ingestor,
    scorer: churn_ingest::Scorer,
}

/// The monitoring jobs: live metrics, drift and retraining, with the triggers that join them (and the
/// receiving end of the retrain requests they send).
fn monitoring_jobs(
    config: &SchedulerConfig,
    infra: &Infra,
) -> anyhow::Result<(JobList, tokio::sync::mpsc::Receiver<()>)> {
    use churn_jobs::drift::{DriftJob, DriftParams};
    use churn_jobs::metrics::{LivePromotion, MetricsJob, MetricsParams};
    use churn_jobs::retrain::{Retrain, RetrainParams, RetrainWatch, TriggerPolicy};
    let registry = Registry::new(infra.pool.clone(), infra.objects.clone());
    let model_name = churn_models::classifier::MODEL_NAME.to_owned();
    let r = &config.retrain;
    let (requests, received) = tokio::sync::mpsc::channel(1);
    let watch = RetrainWatch {
        policy: TriggerPolicy {
            model_name: model_name.clone(),
            on_drift: r.on_drift,
            auc_drop: r.auc_drop,
            auc_cohort: r.auc_cohort.clone(),
            synthetic_triggers: r.synthetic_triggers,
            auc_min_rows: r.auc_min_rows,
            new_labels: r.new_labels,
            cooldown: r.cooldown,
        },
        requests,
    };
    let m = &config.metrics;
    let metrics = MetricsJob::new(
        MetricsParams {
            model_name: model_name.clone(),
            windows: m
                .windows
                .iter()
                .map(|w| (w.name.clone(), w.length))
                .collect(),
            min_samples: m.min_samples,
            calibration_bins: m.calibration_bins,
            label_maturity_days: m.label_maturity_days,
            live_promotion: r.require_live_win.then_some(LivePromotion {
                min_rows: r.live_min_rows,
                margin: r.promotion_margin,
            }),
        }
        .check()?,
        infra.pool.clone(),
        registry.clone(),
        Some(watch.clone()),
    );
    let d = &config.drift;
    let drift = DriftJob::new(
        DriftParams {
            model_name,
            window: d.window,
            min_rows: d.min_rows,
            max_rows: d.max_rows,
            options: churn_monitor::DriftOptions::new().drift_share(d.drift_share),
            seed_data: config.seed_data.clone(),
        }
        .check()?,
        infra.pool.clone(),
        registry.clone(),
        Some(watch),
    );
    let retrain = Retrain::new(
        RetrainParams {
            sources: r.sources.clone(),
            seed_data: config.seed_data.clone(),
            max_rows: r.max_rows,
            budget: r.budget,
            holdout_fraction: r.holdout_fraction,
            promotion_margin: r.promotion_margin,
            hold_for_live: r.require_live_win,
            code_version: format!("scheduler {}", env!("CARGO_PKG_VERSION")),
        }
        .check()?,
        infra.pool.clone(),
        registry,
    );
    Ok((
        vec![
            (
                spec(churn_jobs::metrics::NAME, &m.job),
                Arc::new(metrics) as Arc<dyn Job>,
            ),
            (
                spec(churn_jobs::drift::NAME, &d.job),
                Arc::new(drift) as Arc<dyn Job>,
            ),
            (
                spec(churn_jobs::retrain::NAME, &r.job),
                Arc::new(retrain) as Arc<dyn Job>,
            ),
        ],
        received,
    ))
}

/// What a landed or scored file may cost to read.
fn read_limits(settings: &churn_config::IngestSettings) -> churn_ingest::ReadLimits {
    churn_ingest::ReadLimits {
        max_line_bytes: settings.max_line_bytes,
        max_record_bytes: settings.max_record_bytes,
        max_inflated_bytes: settings.max_inflated_bytes,
        max_inflation_ratio: settings.max_inflation_ratio,
        max_columns: settings.max_columns,
    }
}

/// The ingestion jobs: `ingest` polls `landing/`, `score` polls `score/`; the webhook and `POST /ingest`
/// share their ingestor and scorer.
fn ingest_jobs(
    config: &SchedulerConfig,
    infra: &Infra,
) -> (JobList, churn_ingest::Ingestor, churn_ingest::Scorer) {
    use churn_jobs::ingest::{IngestJob, ScoreJob};
    let settings = &config.ingest;
    let ingestor = churn_ingest::Ingestor::new(
        infra.pool.clone(),
        infra.objects.store.clone(),
        churn_ingest::IngestOptions {
            batch_rows: settings.batch_rows,
            limits: read_limits(settings),
        },
    )
    .with_workers(churn_ingest::WorkerPool::new(
        settings.workers,
        settings.queue,
    ));
    let classifier = churn_api::ClassifierClient::new(
        config.service.common.classifier_url.0.clone(),
        config
            .predict_api_key
            .as_ref()
            .map(|k| k.expose().to_owned()),
        Duration::from_secs(60),
    )
    .declaring(churn_api::BatchSource::Ingested);
    let scorer =
        churn_ingest::Scorer::new(infra.pool.clone(), infra.objects.store.clone(), classifier)
            .reading_like(&ingestor);
    (
        vec![
            (
                spec(churn_jobs::ingest::NAME, &settings.job),
                Arc::new(IngestJob::new(ingestor.clone())) as Arc<dyn Job>,
            ),
            (
                spec(churn_jobs::ingest::SCORE_NAME, &settings.score_job),
                Arc::new(ScoreJob::new(scorer.clone())) as Arc<dyn Job>,
            ),
        ],
        ingestor,
        scorer,
    )
}

/// How long dbt gets between SIGTERM and SIGKILL: half the shutdown grace, at most dbt's usual 10 s.
fn dbt_kill_grace(shutdown_grace: Duration) -> Duration {
    (shutdown_grace / 2).min(Duration::from_secs(10))
}

fn jobs(config: &SchedulerConfig, infra: &Infra) -> anyhow::Result<Jobs> {
    let settings = &config.generate;
    let mode = match settings.job.schedule {
        JobSchedule::Continuous => GenerateMode::Continuous {
            rate: settings.rate,
            run_length: settings.run_length,
        },
        _ => GenerateMode::PerRun {
            customers: settings.customers_per_run,
        },
    };
    let params = GenerateParams {
        batch_size: settings.batch_size,
        mode,
        in_flight: settings.in_flight,
        shadow: settings.shadow,
        ..GenerateParams::default()
    }
    .check()?;
    let common = &config.service.common;
    let generate = Generate::new(
        params,
        common.synthesizer_url.0.clone(),
        common.classifier_url.0.clone(),
        config
            .predict_api_key
            .as_ref()
            .map(|k| k.expose().to_owned()),
        infra.pool.clone(),
    );
    let dbt_settings = &config.dbt;
    let mut dbt_params = churn_dbt::DbtParams::new(&dbt_settings.project_dir)
        .executable(&dbt_settings.executable)
        .target_dir(&dbt_settings.target_dir)
        .threads(dbt_settings.threads)
        .timeout(dbt_settings.job.timeout)
        // A shutdown stops dbt within half its grace, so the run is recorded interrupted (and dbt's
        // queries cancelled) before the scheduler exits.
        .kill_grace(dbt_kill_grace(config.service.common.limits.shutdown_grace))
        .generate_docs(dbt_settings.docs);
    if let Some(dir) = &dbt_settings.profiles_dir {
        dbt_params = dbt_params.profiles_dir(dir);
    }
    // dbt builds as its own role (the marts' owner) where one is configured.
    let dbt_url = dbt_settings
        .database_url
        .as_ref()
        .unwrap_or(&common.database.url);
    let dbt = DbtJob::new(dbt_params.check(), dbt_url.expose(), infra.pool.clone());
    let dbt_docs = dbt.docs_dir().map(std::path::Path::to_path_buf);
    let (monitoring, retrain_requests) = monitoring_jobs(config, infra)?;
    let mut jobs = vec![
        (
            spec(churn_jobs::generate::NAME, &settings.job),
            Arc::new(generate) as Arc<dyn Job>,
        ),
        (
            spec(churn_jobs::dbt::NAME, &dbt_settings.job),
            Arc::new(dbt) as Arc<dyn Job>,
        ),
    ];
    jobs.extend(monitoring);
    let (ingest_jobs, ingestor, scorer) = ingest_jobs(config, infra);
    jobs.extend(ingest_jobs);
    Ok(Jobs {
        jobs,
        dbt_docs,
        retrain_requests,
        ingestor,
        scorer,
    })
}

/// Starts a retrain run for each request the monitoring jobs send; a run already going (here or on
/// another replica) will claim the waiting trigger, or the next check asks again.
fn serve_retrain_requests(runner: Runner, mut requests: tokio::sync::mpsc::Receiver<()>) {
    tokio::spawn(async move {
        while requests.recv().await.is_some() {
            match runner
                .trigger(churn_jobs::retrain::NAME, churn_jobs::Trigger::Event)
                .await
            {
                Ok(run_id) => tracing::info!(%run_id, "retrain run started by a trigger"),
                Err(churn_jobs::RunnerError::Busy(_)) => {}
                Err(e) => tracing::warn!(error = %e, "could not start a triggered retrain run"),
            }
        }
    });
}

/// Builds the runner and the cron schedule, starts continuous jobs, trains a first champion in the
/// background when there is none, and binds the listener.
pub async fn build(config: SchedulerConfig) -> anyhow::Result<Application> {
    let common = &config.service.common;
    let infra = Infra::start(common).await?;
    let Jobs {
        jobs,
        dbt_docs,
        retrain_requests,
        ingestor,
        scorer,
    } = jobs(&config, &infra)?;
    let runner = Runner::new(
        infra.pool.clone(),
        common.database.url.expose(),
        &config.replica,
        jobs,
    )?;
    serve_retrain_requests(runner.clone(), retrain_requests);
    let closed = runner.close_abandoned().await?;
    if closed > 0 {
        tracing::warn!(closed, "closed runs a stopped scheduler left running");
    }

    let mut ticks = BTreeMap::new();
    let mut cron = None;
    for spec in runner.specs().filter(|s| s.enabled) {
        match &spec.schedule {
            Schedule::Cron(expr) => {
                let scheduler = match &cron {
                    Some(s) => s,
                    None => cron.insert(JobScheduler::new().await?),
                };
                let (runner, name) = (runner.clone(), spec.name);
                let job = tokio_cron_scheduler::Job::new_async(expr.as_str(), move |_, _| {
                    let runner = runner.clone();
                    Box::pin(async move { runner.tick(name).await })
                })
                .map_err(|e| anyhow::anyhow!("{}_SCHEDULE: {e}", spec.name.to_uppercase()))?;
                ticks.insert(spec.name.to_owned(), scheduler.add(job).await?);
            }
            Schedule::Continuous => {
                let (runner, name) = (runner.clone(), spec.name);
                tokio::spawn(async move { runner.run_continuously(name).await });
            }
            Schedule::OnDemand => {}
        }
    }
    if let Some(scheduler) = &cron {
        scheduler.start().await?;
    }

    if !config.bootstrap_budget.is_zero() {
        let registry = Registry::new(infra.pool.clone(), infra.objects.clone());
        let (seed, budget) = (config.seed_data.clone(), config.bootstrap_budget);
        tokio::spawn(async move {
            let code_version = format!("scheduler {}", env!("CARGO_PKG_VERSION"));
            // A fresh stack starts everything at once: the first attempt may meet a database still busy
            // with other start-ups (a pool timeout), so a few attempts with back-off before giving up.
            const ATTEMPTS: u32 = 5;
            let mut backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(80));
            for attempt in 1..=ATTEMPTS {
                match churn_models::classifier::bootstrap_champion(
                    &registry,
                    &seed,
                    budget,
                    &code_version,
                )
                .await
                {
                    Ok(_) => break,
                    Err(e) if attempt < ATTEMPTS => {
                        let wait = backoff.next_delay();
                        tracing::warn!(error = %e, attempt, retry_in_secs = wait.as_secs(), "training a first champion failed; retrying");
                        tokio::time::sleep(wait).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not train a first champion; train one with churnctl train --register")
                    }
                }
            }
        });
    }

    let state = AppState {
        infra,
        runner,
        ticks: Arc::new(ticks),
        cron,
        tokens: churn_service::auth::Tokens::from_config(common),
        ingest_async_bytes: config.ingest.async_bytes,
        synthesizer: common.synthesizer_url.clone(),
        classifier: common.classifier_url.clone(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default(),
        ready: Arc::new(ReadyCache::default()),
        dbt_docs,
        ingestor,
        scorer,
        event_secret: config.ingest.event_secret.clone(),
    };
    let limits = common.limits;
    let jobs = state.clone();
    let grace = limits.shutdown_grace;
    Ok(Application::bind(&config.service, router(state, limits))
        .await?
        .on_stop(move || Box::pin(async move { stop_jobs(&jobs, grace).await })))
}

/// Stops the jobs: no new runs start, running ones finish their batch (a retrain its current fit, dbt
/// on SIGTERM) and are recorded `interrupted` within `grace`.
pub async fn stop_jobs(state: &AppState, grace: Duration) {
    if let Some(cron) = &state.cron {
        let mut cron = cron.clone();
        let _ = cron.shutdown().await;
    }
    state.runner.shutdown(grace).await;
}
