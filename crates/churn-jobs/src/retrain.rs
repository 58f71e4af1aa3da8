//! The `retrain` job and its triggers. A run trains on warehouse data (the configured sources), judges the
//! candidate and the champion on the same held-out rows, registers it and promotes it only on evidence,
//! with the trigger(s) it answers to recorded. Besides its cron and the API, a run is requested by
//! evidence: dataset drift, a drop of the champion's ROC AUC on one source's traffic below that source's
//! own baseline, or enough newly labelled ingested rows since the last training, at most once per
//! cooldown.
//!
//! The AUC trigger judges each source (`api`, `batch`, `ingested`, and `synthetic` only with
//! `synthetic_triggers`) by its cohort metrics (`monitoring.cohort_metrics`, slice `all`) of the serving
//! version: the baseline is the source's oldest cohort with at least `auc_min_rows` labelled
//! predictions, the current figure its newest such cohort, and it fires when the current ROC AUC is more
//! than `auc_drop` below the baseline. A source measured against itself never compares synthetic
//! traffic with the real rows of the test split, so a fresh start (one cohort, or none, per source)
//! fires nothing. Provisional cohorts count once they hold enough labels: waiting for maturity would
//! delay every trigger by `LABEL_MATURITY_DAYS`. A run told to stop returns
//! at once, registering nothing, and the runner hands the triggers it claimed back to the waiting queue.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use churn_config::TrainingSource;
use churn_core::Customer;
use churn_models::{Holdout, TrainRequest, TrainingData};
use churn_registry::Registry;
use churn_store::monitoring::{self, PredictionSource, RetrainReason, TriggerOutcome};
use churn_store::ops::Trigger;
use churn_store::warehouse::Source;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::params::InvalidParameter;
use crate::runner::{Job, JobError, Outcome, RunContext};

/// The job's name.
pub const NAME: &str = "retrain";

/// When evidence asks for a retrain.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerPolicy {
    pub model_name: String,
    /// Dataset drift in the newest drift run since the last training.
    pub on_drift: bool,
    /// A source's newest cohort ROC AUC this far below its baseline cohort's (0: off).
    pub auc_drop: f64,
    /// The cohorts compared: `day` or `week`.
    pub auc_cohort: String,
    /// Whether synthetic traffic's cohorts may trigger.
    pub synthetic_triggers: bool,
    /// Labelled predictions a cohort needs before it counts.
    pub auc_min_rows: usize,
    /// Newly labelled ingested rows since the last training (0: off).
    pub new_labels: u64,
    /// At most one triggered retrain per this period.
    pub cooldown: Duration,
}

/// Checks the triggers after the metrics and drift runs and asks the service for a retrain run through
/// `requests` (the service wires it to the runner); the trigger itself is stored first, so a request
/// lost with a restart is found again by the next check.
#[derive(Debug, Clone)]
pub struct RetrainWatch {
    pub policy: TriggerPolicy,
    pub requests: tokio::sync::mpsc::Sender<()>,
}

/// Why a check or a retrain run failed.
#[derive(Debug, thiserror::Error)]
pub enum RetrainError {
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    #[error(transparent)]
    Store(#[from] churn_store::Error),
    #[error(transparent)]
    Registry(#[from] churn_registry::Error),
    #[error("training failed: {0}")]
    Train(#[from] churn_models::Error),
    #[error("no labelled rows to train on in the configured sources ({0}); set RETRAIN_SOURCES")]
    NoData(String),
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<RetrainError> for JobError {
    fn from(e: RetrainError) -> Self {
        match &e {
            RetrainError::Train(churn_models::Error::Cancelled) => {
                JobError::Interrupted(e.to_string())
            }
            RetrainError::Store(_) | RetrainError::Registry(_) => {
                JobError::Retryable(e.to_string())
            }
            _ => JobError::Fatal(e.to_string()),
        }
    }
}

/// The first trigger whose evidence holds, as (reason, evidence).
pub async fn evidence(
    pool: &PgPool,
    registry: &Registry,
    policy: &TriggerPolicy,
) -> Result<Option<(RetrainReason, Value)>, RetrainError> {
    let name = &policy.model_name;
    let Some(champion) = registry
        .by_alias(name, &churn_registry::Alias::CHAMPION)
        .await?
    else {
        return Ok(None);
    };
    let Some(since) = monitoring::last_training(pool, name).await? else {
        return Ok(None);
    };
    if policy.on_drift
        && let Some((run_id, true, share)) =
            monitoring::latest_drift(pool, name, champion.version, since).await?
    {
        return Ok(Some((
            RetrainReason::DatasetDrift,
            json!({"drift_run_id": run_id, "share_drifted": share, "model_version": champion.version}),
        )));
    }
    if policy.auc_drop > 0.0
        && let Some(evidence) = auc_drop(pool, policy, champion.version).await?
    {
        return Ok(Some((RetrainReason::LiveAucDrop, evidence)));
    }
    if policy.new_labels > 0 {
        let labelled = monitoring::labelled_since(pool, Source::Ingested, since).await?;
        if labelled >= 0 && labelled as u64 >= policy.new_labels {
            return Ok(Some((
                RetrainReason::NewLabels,
                json!({"labelled_since_training": labelled, "threshold": policy.new_labels, "since": since}),
            )));
        }
    }
    Ok(None)
}

/// The first source whose newest cohort ROC AUC of `version` is more than the allowed drop below its
/// baseline cohort's (see the module's documentation), as evidence naming both.
async fn auc_drop(
    pool: &PgPool,
    policy: &TriggerPolicy,
    version: churn_core::VersionNumber,
) -> Result<Option<Value>, RetrainError> {
    let sources = [
        PredictionSource::Api,
        PredictionSource::Batch,
        PredictionSource::Ingested,
        PredictionSource::Synthetic,
    ];
    for source in sources {
        if source == PredictionSource::Synthetic && !policy.synthetic_triggers {
            continue;
        }
        let cohorts = monitoring::cohort_aucs(
            pool,
            &policy.model_name,
            version,
            source,
            &policy.auc_cohort,
            policy.auc_min_rows as i64,
        )
        .await?;
        let (Some(baseline), Some(current)) = (cohorts.first(), cohorts.last()) else {
            continue;
        };
        let drop = baseline.roc_auc - current.roc_auc;
        if current.cohort_start > baseline.cohort_start && drop > policy.auc_drop {
            let figure = |c: &monitoring::CohortAuc| {
                json!({
                    "cohort_metric_id": c.cohort_metric_id, "cohort_start": c.cohort_start,
                    "roc_auc": c.roc_auc, "n_labelled": c.n_labelled, "provisional": c.provisional,
                })
            };
            return Ok(Some(json!({
                "source": source.as_str(), "model_version": version, "cohort": policy.auc_cohort,
                "baseline": figure(baseline), "current": figure(current), "drop": drop,
                "allowed_drop": policy.auc_drop, "min_labelled": policy.auc_min_rows,
            })));
        }
    }
    Ok(None)
}

impl RetrainWatch {
    /// Checks the triggers, stores one when its evidence holds (unless cooling down), and requests a
    /// run for a stored or still-waiting trigger. Returns what happened, for the calling run's record;
    /// a failure is logged and reported there, never failing the calling run.
    pub async fn check_and_request(&self, pool: &PgPool, registry: &Registry) -> Option<Value> {
        match self.check(pool, registry).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "checking the retrain triggers failed");
                Some(json!({"error": e.to_string()}))
            }
        }
    }

    async fn check(
        &self,
        pool: &PgPool,
        registry: &Registry,
    ) -> Result<Option<Value>, RetrainError> {
        let Some((reason, evidence)) = evidence(pool, registry, &self.policy).await? else {
            return Ok(None);
        };
        let outcome =
            monitoring::request_retrain(pool, reason, &evidence, self.policy.cooldown).await?;
        let report = match &outcome {
            TriggerOutcome::Stored { trigger_id } => {
                tracing::info!(reason = reason.as_str(), trigger_id, "retrain triggered");
                json!({"reason": reason, "trigger_id": trigger_id, "stored": true})
            }
            TriggerOutcome::Pending { trigger_id, reason } => {
                json!({"reason": reason, "trigger_id": trigger_id, "waiting": true})
            }
            TriggerOutcome::CoolingDown { last } => {
                json!({"reason": reason, "cooling_down_since": last})
            }
        };
        if matches!(
            outcome,
            TriggerOutcome::Stored { .. } | TriggerOutcome::Pending { .. }
        ) {
            // A full channel already holds a request: one is enough.
            let _ = self.requests.try_send(());
        }
        Ok(Some(report))
    }
}

/// The job's parameters, unchecked; [`RetrainParams::check`] makes them usable.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainParams {
    pub sources: Vec<TrainingSource>,
    /// The seed file (the `seed` source).
    pub seed_data: PathBuf,
    /// Most rows taken from each warehouse source, the newest.
    pub max_rows: usize,
    pub budget: Duration,
    pub holdout_fraction: f64,
    pub promotion_margin: f64,
    pub hold_for_live: bool,
    /// Recorded in the lineage.
    pub code_version: String,
}

/// Parameters that passed [`RetrainParams::check`].
#[derive(Debug, Clone)]
pub struct ValidRetrainParams(RetrainParams);

impl RetrainParams {
    pub fn check(self) -> Result<ValidRetrainParams, RetrainError> {
        let bad = |name: &'static str, value: String, rule: &'static str| {
            Err(RetrainError::from(InvalidParameter { name, value, rule }))
        };
        if self.sources.is_empty() {
            return bad("sources", "[]".into(), "must name at least one source");
        }
        if self.max_rows < 100 {
            return bad(
                "max_rows",
                self.max_rows.to_string(),
                "must be at least 100",
            );
        }
        if self.budget.is_zero() {
            return bad("budget", "0 s".into(), "must be at least 1 s");
        }
        if !(0.05..=0.5).contains(&self.holdout_fraction) {
            return bad(
                "holdout_fraction",
                self.holdout_fraction.to_string(),
                "must be between 0.05 and 0.5",
            );
        }
        if !(0.0..=1.0).contains(&self.promotion_margin) {
            return bad(
                "promotion_margin",
                self.promotion_margin.to_string(),
                "must be between 0 and 1 (a difference of ROC AUC)",
            );
        }
        Ok(ValidRetrainParams(self))
    }
}

fn source_name(source: TrainingSource) -> &'static str {
    match source {
        TrainingSource::Seed => "seed",
        TrainingSource::Ingested => "ingested",
        TrainingSource::Synthetic => "synthetic",
    }
}

/// The retrain job.
#[derive(Debug, Clone)]
pub struct Retrain {
    params: RetrainParams,
    pool: PgPool,
    registry: Registry,
}

impl Retrain {
    pub fn new(params: ValidRetrainParams, pool: PgPool, registry: Registry) -> Self {
        Self {
            params: params.0,
            pool,
            registry,
        }
    }

    /// The training rows of every configured source, described, with a SHA-256 of exactly those rows.
    async fn training_rows(&self) -> Result<(Vec<Customer>, String, String), RetrainError> {
        let mut rows = Vec::new();
        let mut parts = Vec::new();
        let mut hasher = Sha256::new();
        for &source in &self.params.sources {
            let (found, part_hash) = match source {
                TrainingSource::Seed => {
                    let path = self.params.seed_data.clone();
                    churn_store::seed::ensure_seed(&path).await?;
                    tokio::task::spawn_blocking(move || {
                        churn_models::data::read_customers_hashed(&path)
                    })
                    .await
                    .map_err(|e| RetrainError::Task(e.to_string()))??
                }
                TrainingSource::Ingested | TrainingSource::Synthetic => {
                    let store = if source == TrainingSource::Ingested {
                        Source::Ingested
                    } else {
                        Source::Synthetic
                    };
                    let found = monitoring::labelled_customers(
                        &self.pool,
                        store,
                        None,
                        self.params.max_rows as i64,
                    )
                    .await?;
                    let mut h = Sha256::new();
                    for c in &found {
                        h.update(serde_json::to_vec(c).unwrap_or_default());
                        h.update(b"\n");
                    }
                    (found, hex::encode(h.finalize()))
                }
            };
            hasher.update(format!("{}:{part_hash}\n", source_name(source)));
            parts.push(format!("{} ({} rows)", source_name(source), found.len()));
            rows.extend(found.into_iter().filter(|c| c.churn_label.is_some()));
        }
        let description = format!("warehouse: {}", parts.join(" + "));
        if rows.is_empty() {
            return Err(RetrainError::NoData(description));
        }
        Ok((rows, description, hex::encode(hasher.finalize())))
    }

    async fn run_inner(&self, ctx: RunContext) -> Result<Outcome, RetrainError> {
        let started = Instant::now();
        let fallback = match ctx.trigger {
            Trigger::Schedule => RetrainReason::Schedule,
            Trigger::Manual | Trigger::Event => RetrainReason::Manual,
        };
        let triggers = monitoring::claim_retrain_triggers(&self.pool, ctx.run_id, fallback).await?;
        let reasons: Vec<&str> = triggers.iter().map(|t| t.reason.as_str()).collect();
        tracing::info!(?reasons, "retraining");
        let (customers, description, sha256) = tokio::select! {
            rows = self.training_rows() => rows?,
            () = ctx.cancel.cancelled() => return Err(churn_models::Error::Cancelled.into()),
        };
        let rows = customers.len();
        let request = TrainRequest {
            data: TrainingData::Rows {
                customers,
                description: description.clone(),
                sha256,
            },
            holdout: Holdout::Split {
                fraction: self.params.holdout_fraction,
                seed: 0,
            },
            options: churn_automl::TrainOptions {
                time_budget: self.params.budget,
                ..churn_automl::TrainOptions::default()
            },
            promotion_margin: self.params.promotion_margin,
            hold_for_live: self.params.hold_for_live,
            code_version: self.params.code_version.clone(),
        };
        // The training is CPU-bound for up to the budget: cancelling raises its stop flag and returns at
        // once, so the run is recorded interrupted within the shutdown grace and nothing is registered;
        // the abandoned thread stops at its next cross-validation fold.
        let outcome =
            churn_models::train_and_register_until(&self.registry, request, &ctx.cancel, |_| {})
                .await?;
        let (version, decision) = outcome
            .registered
            .as_ref()
            .map(|(v, d)| (Some(v.version), Some(d.clone())))
            .unwrap_or((None, None));
        if let Some(d) = &decision {
            metrics::counter!("retrain_decisions_total",
                "promoted" => if d.promoted { "true" } else { "false" })
            .increment(1);
        }
        Ok(Outcome {
            rows: rows as i64,
            details: json!({
                "seconds": started.elapsed().as_secs_f64(),
                "reasons": reasons,
                "trigger_ids": triggers.iter().map(|t| t.trigger_id).collect::<Vec<_>>(),
                "evidence": triggers.iter().map(|t| &t.evidence.0).collect::<Vec<_>>(),
                "data": description,
                "train_rows": outcome.train_rows,
                "holdout_rows": outcome.holdout_rows,
                "family": outcome.model.family,
                "test_roc_auc": outcome.test_metrics.and_then(|m| m.roc_auc),
                "version": version,
                "promoted": decision.as_ref().map(|d| d.promoted),
                "decision": decision.as_ref().map(|d| d.reason.clone()),
                "champion_score": decision.as_ref().and_then(|d| d.champion_score),
                "candidate_score": decision.as_ref().and_then(|d| d.candidate_score),
            }),
        })
    }
}

impl Job for Retrain {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, Result<Outcome, JobError>> {
        Box::pin(async move { self.run_inner(ctx).await.map_err(JobError::from) })
    }
}
