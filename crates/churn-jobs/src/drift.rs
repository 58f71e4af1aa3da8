//! The `drift` job: the customers written in the last window, and apart from them the customers the
//! champion scored for callers (the logged traffic, source `api`), each against the champion's
//! training-data profile, by Evidently's default data-drift rules (`churn-monitor`): per column the test,
//! its score, threshold, verdict and PSI → `monitoring.drift`; the dataset verdict and the
//! churn-probability drift → `monitoring.drift_runs` with the source; then the retrain triggers are
//! checked.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use churn_core::VersionNumber;
use churn_monitor::{DatasetDrift, DriftOptions, ReferenceProfile, ValidDriftOptions};
use churn_registry::{ModelVersion, Registry};
use churn_store::monitoring::{self, DriftColumn, DriftRun, DriftSource, Window};
use futures::future::BoxFuture;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::params::InvalidParameter;
use crate::retrain::RetrainWatch;
use crate::runner::{Job, JobError, Outcome, RunContext};

/// The job's name.
pub const NAME: &str = "drift";

/// The job's parameters, unchecked; [`DriftParams::check`] makes them usable.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftParams {
    /// The registered model whose champion's training data is the reference.
    pub model_name: String,
    /// The current data: customers written in this window before each run.
    pub window: Duration,
    /// Fewest current rows worth a verdict; with fewer the run stores nothing.
    pub min_rows: usize,
    /// Most current rows compared (the newest).
    pub max_rows: usize,
    /// Evidently's settings (drift share, per-test thresholds).
    pub options: DriftOptions,
    /// The reference when the champion was registered without a profile (older versions): the seed.
    pub seed_data: PathBuf,
}

impl Default for DriftParams {
    fn default() -> Self {
        Self {
            model_name: churn_models::classifier::MODEL_NAME.to_owned(),
            window: Duration::from_secs(3600),
            min_rows: 200,
            max_rows: 100_000,
            options: DriftOptions::default(),
            seed_data: PathBuf::from("telco_customer_churn.csv"),
        }
    }
}

/// Parameters that passed [`DriftParams::check`].
#[derive(Debug, Clone)]
pub struct ValidDriftParams {
    params: DriftParams,
    options: ValidDriftOptions,
}

/// Why a drift run failed.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    #[error(transparent)]
    Monitor(#[from] churn_monitor::Error),
    #[error(transparent)]
    Store(#[from] churn_store::Error),
    #[error(transparent)]
    Registry(#[from] churn_registry::Error),
    #[error("reading the seed data for the reference: {0}")]
    Seed(#[from] churn_models::Error),
    #[error(
        "there is no champion of {0} yet: drift is measured against the champion's training data"
    )]
    NoChampion(String),
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<DriftError> for JobError {
    fn from(e: DriftError) -> Self {
        match &e {
            DriftError::Store(_) | DriftError::Registry(_) | DriftError::NoChampion(_) => {
                JobError::Retryable(e.to_string())
            }
            _ => JobError::Fatal(e.to_string()),
        }
    }
}

impl DriftParams {
    pub fn check(self) -> Result<ValidDriftParams, DriftError> {
        let bad = |name: &'static str, value: String, rule: &'static str| {
            Err(DriftError::from(InvalidParameter { name, value, rule }))
        };
        if self.window < Duration::from_secs(1) {
            return bad(
                "window",
                format!("{} s", self.window.as_secs_f64()),
                "must be at least 1 s",
            );
        }
        if self.min_rows == 0 {
            return bad("min_rows", "0".into(), "must be at least 1");
        }
        if self.max_rows < self.min_rows {
            return bad(
                "max_rows",
                self.max_rows.to_string(),
                "must be at least min_rows",
            );
        }
        let options = self.options.check()?;
        Ok(ValidDriftParams {
            params: self,
            options,
        })
    }
}

/// Where a run's reference came from.
#[derive(Debug, Clone)]
struct Reference {
    version: VersionNumber,
    profile: Arc<ReferenceProfile>,
    source: &'static str,
}

/// The drift job.
#[derive(Debug)]
pub struct DriftJob {
    params: DriftParams,
    options: ValidDriftOptions,
    pool: PgPool,
    registry: Registry,
    retrain: Option<RetrainWatch>,
    /// The last reference loaded: profiles are immutable per version, so one load per champion.
    cached: tokio::sync::Mutex<Option<Reference>>,
}

impl DriftJob {
    pub fn new(
        params: ValidDriftParams,
        pool: PgPool,
        registry: Registry,
        retrain: Option<RetrainWatch>,
    ) -> Self {
        Self {
            params: params.params,
            options: params.options,
            pool,
            registry,
            retrain,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    async fn reference(&self, champion: &ModelVersion) -> Result<Reference, DriftError> {
        let mut cached = self.cached.lock().await;
        if let Some(r) = cached.as_ref().filter(|r| r.version == champion.version) {
            return Ok(r.clone());
        }
        let reference = match self.registry.load_profile(champion).await? {
            Some(bytes) => Reference {
                version: champion.version,
                profile: Arc::new(ReferenceProfile::from_json(&bytes)?),
                source: "the champion's training data",
            },
            None => {
                tracing::warn!(
                    version = %champion.version,
                    "the champion has no stored training profile; measuring drift against the seed data"
                );
                let path = self.params.seed_data.clone();
                let profile = tokio::task::spawn_blocking(move || {
                    let (rows, _) = churn_models::data::read_customers_hashed(&path)?;
                    Ok::<_, DriftError>(ReferenceProfile::from_customers(&rows)?)
                })
                .await
                .map_err(|e| DriftError::Task(e.to_string()))??;
                Reference {
                    version: champion.version,
                    profile: Arc::new(profile),
                    source: "the seed data (the champion has no stored profile)",
                }
            }
        };
        *cached = Some(reference.clone());
        Ok(reference)
    }

    /// The champion and its reference, and the window ending now.
    async fn champion_window(&self) -> Result<(ModelVersion, Reference, Window), DriftError> {
        let name = &self.params.model_name;
        let champion = self
            .registry
            .by_alias(name, &churn_registry::Alias::CHAMPION)
            .await?
            .ok_or_else(|| DriftError::NoChampion(name.clone()))?;
        let reference = self.reference(&champion).await?;
        let end = Utc::now();
        let window = Window {
            name: "drift".to_owned(),
            start: end
                - chrono::Duration::from_std(self.params.window).unwrap_or(chrono::Duration::MAX),
            end,
        };
        Ok((champion, reference, window))
    }

    /// Measures and stores one drift run of the warehouse's customers; `None` when the window held too
    /// few customers.
    pub async fn measure(
        &self,
        job_run_id: Option<Uuid>,
    ) -> Result<Option<(DriftRun, DatasetDrift)>, DriftError> {
        let (champion, reference, window) = self.champion_window().await?;
        self.measure_source(
            DriftSource::Warehouse,
            &champion,
            &reference,
            window,
            job_run_id,
        )
        .await
    }

    /// Measures and stores one drift run of the champion's logged traffic (single and batch calls);
    /// `None` when the window held too few logged predictions (none at all is not a failure).
    pub async fn measure_logged(
        &self,
        job_run_id: Option<Uuid>,
    ) -> Result<Option<(DriftRun, DatasetDrift)>, DriftError> {
        let (champion, reference, window) = self.champion_window().await?;
        self.measure_source(DriftSource::Api, &champion, &reference, window, job_run_id)
            .await
    }

    async fn measure_source(
        &self,
        source: DriftSource,
        champion: &ModelVersion,
        reference: &Reference,
        window: Window,
        job_run_id: Option<Uuid>,
    ) -> Result<Option<(DriftRun, DatasetDrift)>, DriftError> {
        let name = &self.params.model_name;
        let limit = self.params.max_rows as i64;
        let (current, probabilities) = match source {
            DriftSource::Warehouse => {
                let current = monitoring::customers_in(&self.pool, &window, limit).await?;
                if current.len() < self.params.min_rows {
                    return Ok(None);
                }
                let probabilities =
                    monitoring::probabilities(&self.pool, name, champion.version, &window).await?;
                (current, probabilities)
            }
            DriftSource::Api => {
                monitoring::logged_traffic_in(&self.pool, name, champion.version, &window, limit)
                    .await?
            }
        };
        if current.len() < self.params.min_rows {
            return Ok(None);
        }
        let (profile, options) = (reference.profile.clone(), self.options);
        let n_current = current.len();
        let (drift, prediction) = tokio::task::spawn_blocking(move || {
            let drift = churn_monitor::data_drift(&profile, &current, &options)?;
            let prediction = match (&profile.prediction, probabilities.is_empty()) {
                (Some(_), false) => Some(churn_monitor::prediction_drift(
                    &profile,
                    &probabilities,
                    &options,
                )?),
                _ => None,
            };
            Ok::<_, DriftError>((drift, prediction))
        })
        .await
        .map_err(|e| DriftError::Task(e.to_string()))??;
        let run = DriftRun {
            run_id: Uuid::new_v4(),
            job_run_id,
            model_name: name.clone(),
            model_version: champion.version,
            source,
            window,
            n_reference: reference.profile.n_rows as i64,
            n_current: n_current as i64,
            n_columns: drift.n_columns as i32,
            n_drifted: drift.n_drifted as i32,
            share_drifted: drift.share_drifted,
            drift_share: drift.drift_share_threshold,
            dataset_drift: drift.dataset_drift,
            prediction: prediction.map(|p| (p.stattest.name().to_owned(), p.score, p.drifted)),
        };
        let columns: Vec<DriftColumn> = drift
            .columns
            .iter()
            .map(|c| DriftColumn {
                feature: c.column.clone(),
                column_type: c.column_type.to_string(),
                statistic: c.stattest.name().to_owned(),
                value: c.score,
                threshold: c.threshold,
                drifted: c.drifted,
                psi: c.psi,
                n_reference: c.n_reference as i64,
                n_current: c.n_current as i64,
            })
            .collect();
        monitoring::insert_drift_run(&self.pool, &run, &columns).await?;
        metrics::gauge!("churn_drift_columns_drifted",
            "model_name" => name.clone(), "source" => source.as_str())
        .set(drift.n_drifted as f64);
        metrics::gauge!("churn_dataset_drift", "model_name" => name.clone(), "source" => source.as_str())
            .set(if drift.dataset_drift { 1.0 } else { 0.0 });
        tracing::info!(
            %source,
            drifted = drift.n_drifted,
            dataset_drift = drift.dataset_drift,
            reference = reference.source,
            "drift measured"
        );
        Ok(Some((run, drift)))
    }

    async fn run_inner(&self, ctx: RunContext) -> Result<Outcome, DriftError> {
        let started = Instant::now();
        let (champion, reference, window) = self.champion_window().await?;
        let mut rows = 0;
        let mut measured = Vec::new();
        for source in DriftSource::ALL {
            let run = self
                .measure_source(
                    source,
                    &champion,
                    &reference,
                    window.clone(),
                    Some(ctx.run_id),
                )
                .await?;
            rows += run.as_ref().map_or(0, |(_, d)| d.n_columns as i64);
            measured.push((source, self.run_details(source, run)));
        }
        let trigger = match &self.retrain {
            Some(watch) => watch.check_and_request(&self.pool, &self.registry).await,
            None => None,
        };
        // The warehouse's run at the top level, as before the logged traffic was measured; each other
        // source under its name.
        let mut details = serde_json::Map::new();
        for (source, run) in measured {
            match (source, run) {
                (DriftSource::Warehouse, serde_json::Value::Object(fields)) => {
                    details.extend(fields)
                }
                (source, run) => {
                    details.insert(source.to_string(), run);
                }
            }
        }
        details.insert("seconds".into(), json!(started.elapsed().as_secs_f64()));
        details.insert("retrain_trigger".into(), json!(trigger));
        Ok(Outcome {
            rows,
            details: details.into(),
        })
    }

    fn run_details(
        &self,
        source: DriftSource,
        measured: Option<(DriftRun, DatasetDrift)>,
    ) -> serde_json::Value {
        match measured {
            None => json!({
                "skipped": format!(
                    "fewer than {} {} in the last {} s",
                    self.params.min_rows,
                    match source {
                        DriftSource::Warehouse => "customers were written",
                        DriftSource::Api => "predictions were logged for the champion",
                    },
                    self.params.window.as_secs()
                ),
            }),
            Some((run, drift)) => json!({
                "drift_run_id": run.run_id,
                "model_version": run.model_version,
                "n_current": run.n_current,
                "n_drifted": drift.n_drifted,
                "dataset_drift": drift.dataset_drift,
                "drifted_columns": drift.columns.iter().filter(|c| c.drifted)
                    .map(|c| c.column.as_str()).collect::<Vec<_>>(),
                "prediction": run.prediction.as_ref()
                    .map(|(s, v, d)| json!({"statistic": s, "score": v, "drifted": d})),
            }),
        }
    }
}

impl Job for DriftJob {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, Result<Outcome, JobError>> {
        Box::pin(async move { self.run_inner(ctx).await.map_err(JobError::from) })
    }
}
