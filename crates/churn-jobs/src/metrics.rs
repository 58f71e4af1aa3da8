//! The `metrics` job: live classification metrics of every model version that scored labelled customers
//! in each window (accuracy, precision, recall, F1, log loss and Brier on P(churn), ROC and PR AUC, and a
//! calibration table with its expected calibration error) → `monitoring.model_metrics` (`scheduled`) and
//! `monitoring.calibration`; the cohort metrics of every source on matured labels ([`crate::cohorts`]);
//! then, when configured, a challenger that beats the champion on the same live customers is promoted,
//! and the retrain triggers are checked.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use churn_core::VersionNumber;
use churn_monitor::CalibrationOptions;
use churn_registry::Registry;
use churn_store::monitoring::{self, CalibrationBin, LiveMetrics, Window};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::params::InvalidParameter;
use crate::retrain::RetrainWatch;
use crate::runner::{Job, JobError, Outcome, RunContext};

/// The job's name.
pub const NAME: &str = "metrics";

/// Promotion of the challenger on live evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct LivePromotion {
    /// Labelled customers both versions must have scored in the longest window.
    pub min_rows: usize,
    /// ROC AUC the challenger must gain over the champion.
    pub margin: f64,
}

/// The job's parameters, unchecked; [`MetricsParams::check`] makes them usable.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsParams {
    /// The registered model whose versions are measured.
    pub model_name: String,
    /// Windows ending at each run, by name (`1h`) and length.
    pub windows: Vec<(String, Duration)>,
    /// Fewest labelled predictions a window needs for a row.
    pub min_samples: usize,
    /// Probability bins of the calibration table: 2 to 100.
    pub calibration_bins: usize,
    /// Promote the challenger when it wins on live rows (off: `None`).
    pub live_promotion: Option<LivePromotion>,
    /// Days after a cohort's end until its labels count as matured (LABEL_MATURITY_DAYS): 0 to 3650.
    pub label_maturity_days: u32,
}

impl Default for MetricsParams {
    fn default() -> Self {
        Self {
            model_name: churn_models::classifier::MODEL_NAME.to_owned(),
            windows: vec![
                ("1h".to_owned(), Duration::from_secs(3600)),
                ("1d".to_owned(), Duration::from_secs(86_400)),
            ],
            min_samples: 50,
            calibration_bins: 10,
            live_promotion: None,
            label_maturity_days: 30,
        }
    }
}

/// Parameters that passed [`MetricsParams::check`].
#[derive(Debug, Clone)]
pub struct ValidMetricsParams(MetricsParams);

/// Why a metrics run failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    #[error(transparent)]
    Store(#[from] churn_store::Error),
    #[error(transparent)]
    Registry(#[from] churn_registry::Error),
    #[error(transparent)]
    Models(#[from] churn_models::Error),
    #[error("background task failed: {0}")]
    Task(String),
    #[error("computing the metrics of version {version}: {reason}")]
    Compute {
        version: VersionNumber,
        reason: String,
    },
}

impl From<MetricsError> for JobError {
    fn from(e: MetricsError) -> Self {
        match &e {
            MetricsError::Store(_) | MetricsError::Registry(_) | MetricsError::Models(_) => {
                JobError::Retryable(e.to_string())
            }
            _ => JobError::Fatal(e.to_string()),
        }
    }
}

impl MetricsParams {
    pub fn check(self) -> Result<ValidMetricsParams, MetricsError> {
        let bad = |name: &'static str, value: String, rule: &'static str| {
            Err(MetricsError::from(InvalidParameter { name, value, rule }))
        };
        if self.windows.is_empty() {
            return bad("windows", "[]".into(), "must name at least one window");
        }
        if let Some((name, _)) = self.windows.iter().find(|(_, l)| l.is_zero()) {
            return bad("windows", name.clone(), "must each be at least 1 s long");
        }
        if self.min_samples == 0 {
            return bad("min_samples", "0".into(), "must be at least 1");
        }
        if CalibrationOptions::new()
            .n_bins(self.calibration_bins)
            .check()
            .is_err()
        {
            return bad(
                "calibration_bins",
                self.calibration_bins.to_string(),
                "must be between 2 and 100",
            );
        }
        if self.label_maturity_days > 3650 {
            return bad(
                "label_maturity_days",
                self.label_maturity_days.to_string(),
                "must be between 0 and 3650 days",
            );
        }
        if let Some(live) = &self.live_promotion {
            if live.min_rows == 0 {
                return bad("live_promotion.min_rows", "0".into(), "must be at least 1");
            }
            if !(0.0..=1.0).contains(&live.margin) {
                return bad(
                    "live_promotion.margin",
                    live.margin.to_string(),
                    "must be between 0 and 1 (a difference of ROC AUC)",
                );
            }
        }
        Ok(ValidMetricsParams(self))
    }
}

/// The metrics of one version on one window, computed from its labelled predictions.
pub fn live_metrics(
    model_name: &str,
    version: VersionNumber,
    window: &Window,
    predictions: &monitoring::LabelledPredictions,
    calibration_bins: usize,
) -> Result<LiveMetrics, MetricsError> {
    let compute = |reason: String| MetricsError::Compute { version, reason };
    let threshold = predictions.threshold.unwrap_or(0.5);
    let options = CalibrationOptions::new()
        .n_bins(calibration_bins)
        .check()
        .map_err(|e| compute(e.to_string()))?;
    // The metrics sort the scores while the calibration table bins them: two cores, two threads.
    let (m, calibration) = std::thread::scope(|scope| {
        let calibration = scope.spawn(|| {
            churn_monitor::calibration(&predictions.labels, &predictions.probabilities, &options)
        });
        let m = churn_core::metrics::evaluate(
            &predictions.labels,
            &predictions.probabilities,
            threshold,
        );
        (m, calibration.join())
    });
    let m = m.map_err(|e| compute(e.to_string()))?;
    let calibration = calibration
        .map_err(|_| compute("the calibration thread panicked".to_owned()))?
        .map_err(|e| compute(e.to_string()))?;
    Ok(LiveMetrics {
        model_name: model_name.to_owned(),
        model_version: version,
        window: window.clone(),
        job_run_id: None,
        n_samples: m.n as i64,
        n_positive: m.positives as i64,
        threshold,
        accuracy: m.accuracy,
        precision: m.precision,
        recall: m.recall,
        f1: m.f1,
        log_loss: m.log_loss,
        roc_auc: m.roc_auc,
        pr_auc: m.pr_auc,
        brier: m.brier,
        ece: Some(calibration.ece),
        bins: calibration
            .bins
            .iter()
            .enumerate()
            .map(|(i, b)| CalibrationBin {
                bin: i as i32,
                lower: b.lower,
                upper: b.upper,
                n_samples: b.count as i64,
                n_positive: b.positives as i64,
                mean_predicted: b.mean_predicted,
                observed_rate: b.observed_rate,
            })
            .collect(),
    })
}

/// The metrics job.
#[derive(Debug, Clone)]
pub struct MetricsJob {
    params: MetricsParams,
    pool: PgPool,
    registry: Registry,
    retrain: Option<RetrainWatch>,
}

impl MetricsJob {
    pub fn new(
        params: ValidMetricsParams,
        pool: PgPool,
        registry: Registry,
        retrain: Option<RetrainWatch>,
    ) -> Self {
        Self {
            params: params.0,
            pool,
            registry,
            retrain,
        }
    }

    /// Computes and stores every window's metrics for every version that scored in it; returns the
    /// stored rows (with their ids) and what was skipped for too few labelled rows.
    pub async fn compute(
        &self,
        job_run_id: Option<uuid::Uuid>,
    ) -> Result<(Vec<(i64, LiveMetrics)>, Vec<Value>), MetricsError> {
        let end = Utc::now();
        let windows: Vec<Window> = self
            .params
            .windows
            .iter()
            .map(|(name, length)| Window {
                name: name.clone(),
                start: end - chrono::Duration::from_std(*length).unwrap_or(chrono::Duration::MAX),
                end,
            })
            .collect();
        // Every window ends now, so each version's rows are read once, for the longest window, and
        // the shorter windows are slices of them.
        let Some(longest) = windows.iter().min_by_key(|w| w.start).cloned() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let longest_start = longest.start;
        let mut read: HashMap<VersionNumber, Arc<monitoring::LabelledPredictions>> = HashMap::new();
        let mut rows = Vec::new();
        let mut skipped = Vec::new();
        for window in &windows {
            for version in
                monitoring::versions_scored(&self.pool, &self.params.model_name, window).await?
            {
                let all = match read.get(&version) {
                    Some(all) => Arc::clone(all),
                    None => {
                        let all = Arc::new(
                            monitoring::labelled_predictions(
                                &self.pool,
                                &self.params.model_name,
                                version,
                                &longest,
                            )
                            .await?,
                        );
                        read.insert(version, Arc::clone(&all));
                        all
                    }
                };
                let labelled = all
                    .classified_at
                    .iter()
                    .filter(|&&at| at >= window.start.timestamp_micros())
                    .count();
                if labelled < self.params.min_samples {
                    skipped.push(json!({
                        "window": window.name, "model_version": version,
                        "labelled": labelled, "min_samples": self.params.min_samples,
                    }));
                    continue;
                }
                let calibration_bins = self.params.calibration_bins;
                let (model_name, w) = (self.params.model_name.clone(), window.clone());
                // Sorting a million probabilities is tens of milliseconds: off the async threads.
                let mut metrics = tokio::task::spawn_blocking(move || {
                    let predictions = if w.start <= longest_start {
                        Cow::Borrowed(all.as_ref())
                    } else {
                        Cow::Owned(all.since(w.start))
                    };
                    live_metrics(&model_name, version, &w, &predictions, calibration_bins)
                })
                .await
                .map_err(|e| MetricsError::Compute {
                    version,
                    reason: e.to_string(),
                })??;
                metrics.job_run_id = job_run_id;
                rows.push(metrics);
            }
        }
        let ids = monitoring::insert_live_metrics(&self.pool, &rows).await?;
        Ok((ids.into_iter().zip(rows).collect(), skipped))
    }

    /// Compares the challenger with the champion on the customers both scored in the longest window and
    /// promotes it when it wins; returns the decision, if one was taken.
    async fn review_challenger(&self, live: &LivePromotion) -> Result<Option<Value>, MetricsError> {
        let name = &self.params.model_name;
        let champion = self
            .registry
            .by_alias(name, &churn_registry::Alias::CHAMPION)
            .await?;
        let challenger = self
            .registry
            .by_alias(name, &churn_registry::Alias::CHALLENGER)
            .await?;
        let (Some(champion), Some(challenger)) = (champion, challenger) else {
            return Ok(None);
        };
        let Some((window_name, length)) = self.params.windows.iter().max_by_key(|(_, l)| *l) else {
            return Ok(None);
        };
        let end = Utc::now();
        let window = Window {
            name: window_name.clone(),
            start: end - chrono::Duration::from_std(*length).unwrap_or(chrono::Duration::MAX),
            end,
        };
        let paired = monitoring::paired_predictions(
            &self.pool,
            name,
            champion.version,
            challenger.version,
            &window,
        )
        .await?;
        if paired.labels.len() < live.min_rows {
            return Ok(None);
        }
        let evaluate = |probabilities: &[f64], version: &churn_registry::ModelVersion| {
            let threshold = churn_core::VersionMetrics::from_json(&version.metrics.0)
                .threshold
                .unwrap_or(0.5);
            churn_core::metrics::evaluate(&paired.labels, probabilities, threshold).map_err(|e| {
                MetricsError::Compute {
                    version: version.version,
                    reason: e.to_string(),
                }
            })
        };
        let comparison = churn_models::classifier::LiveComparison {
            champion_version: champion.version,
            challenger_version: challenger.version,
            champion: evaluate(&paired.first, &champion)?,
            challenger: evaluate(&paired.second, &challenger)?,
            window: window_name.clone(),
        };
        let decision =
            churn_models::classifier::decide_on_live(&self.registry, &comparison, live.margin)
                .await?;
        Ok(decision.map(|d| {
            json!({
                "candidate_version": d.candidate_version, "champion_version": d.champion_version,
                "promoted": d.promoted, "reason": d.reason,
            })
        }))
    }

    /// Computes and upserts the cohort metrics whose cohorts are not final yet (see [`crate::cohorts`]).
    pub async fn compute_cohorts(
        &self,
        job_run_id: Option<uuid::Uuid>,
    ) -> Result<crate::cohorts::CohortReport, MetricsError> {
        let options = CalibrationOptions::new()
            .n_bins(self.params.calibration_bins)
            .check()
            .map_err(|e| MetricsError::Task(e.to_string()))?;
        crate::cohorts::compute_cohorts(
            &self.pool,
            &self.params.model_name,
            options,
            self.params.label_maturity_days,
            job_run_id,
        )
        .await
    }

    async fn run_inner(&self, ctx: RunContext) -> Result<Outcome, MetricsError> {
        let started = Instant::now();
        let (rows, skipped) = self.compute(Some(ctx.run_id)).await?;
        // Before the triggers: they judge each source by its cohorts.
        let cohorts = self.compute_cohorts(Some(ctx.run_id)).await?;
        let champion = self
            .registry
            .by_alias(&self.params.model_name, &churn_registry::Alias::CHAMPION)
            .await?
            .map(|v| v.version);
        for (_, m) in &rows {
            if Some(m.model_version) == champion
                && let Some(auc) = m.roc_auc
            {
                metrics::gauge!("churn_champion_live_roc_auc",
                    "model_name" => m.model_name.clone(),
                    "model_version" => m.model_version.to_string(),
                    "window" => m.window.name.clone())
                .set(auc);
            }
        }
        let live_decision = match &self.params.live_promotion {
            Some(live) => self.review_challenger(live).await?,
            None => None,
        };
        let trigger = match &self.retrain {
            Some(watch) => watch.check_and_request(&self.pool, &self.registry).await,
            None => None,
        };
        Ok(Outcome {
            rows: rows.len() as i64,
            details: json!({
                "seconds": started.elapsed().as_secs_f64(),
                "metrics": rows.iter().map(|(id, m)| json!({
                    "metric_id": id, "window": m.window.name, "model_version": m.model_version,
                    "n": m.n_samples, "roc_auc": m.roc_auc, "log_loss": m.log_loss, "ece": m.ece,
                })).collect::<Vec<_>>(),
                "skipped": skipped,
                "cohorts": cohorts.to_json(),
                "live_decision": live_decision,
                "retrain_trigger": trigger,
            }),
        })
    }
}

impl Job for MetricsJob {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, Result<Outcome, JobError>> {
        Box::pin(async move { self.run_inner(ctx).await.map_err(JobError::from) })
    }
}
