//! The metrics job's cohort metrics (`monitoring.cohort_metrics`): per model version, source (`api`,
//! `batch`, `synthetic`, `ingested`), day and week cohort of prediction time (UTC) and slice, the label
//! coverage and, on the labelled predictions, ROC AUC, PR AUC, log loss, Brier and calibration.
//!
//! A cohort is provisional until its labels have matured: until its end + `LABEL_MATURITY_DAYS`. Once a
//! run has stored a cohort after that, it is final: the upsert leaves final rows alone, and each run
//! reads only the predictions after the newest final week, so a run's cost follows the unsettled
//! cohorts, not the whole history. (A prediction logged late into a final week is not counted.) Which
//! outcome judges a logged prediction is `churn_store::monitoring`'s rule (cohorts.rs): the latest
//! observation wins; an outcome given by customer id judges only predictions made before it was observed.

use std::time::Instant;

use chrono::{DateTime, Duration as Days, NaiveDate, TimeZone, Utc};
use churn_monitor::{CohortKind, ScoredColumns, SliceColumn, ValidCalibrationOptions};
use churn_store::monitoring::{self, CohortMetric, SLICE_COLUMNS, ScoredBySource};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::metrics::MetricsError;

/// What a cohort run did, for the job's record.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortReport {
    /// Predictions read (after the newest final week).
    pub predictions: usize,
    /// Rows written (inserted, or updated while provisional).
    pub rows: u64,
    /// Cohort rows computed, final ones among them.
    pub computed: usize,
    pub finalised: usize,
    /// Predictions were read from here on.
    pub since: DateTime<Utc>,
    pub seconds: f64,
}

impl CohortReport {
    pub fn to_json(&self) -> Value {
        json!({
            "predictions": self.predictions, "rows_written": self.rows, "computed": self.computed,
            "finalised": self.finalised, "since": self.since, "seconds": self.seconds,
        })
    }
}

fn day_start(day: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(day * 86_400, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The rows of every cohort of every (version, source) in `read`, judged at `now`.
fn cohort_rows(
    model_name: &str,
    read: &ScoredBySource,
    options: &ValidCalibrationOptions,
    maturity_days: u32,
    now: DateTime<Utc>,
) -> Result<Vec<CohortMetric>, MetricsError> {
    let mut out = Vec::new();
    for ((version, source), rows) in read {
        let slices: Vec<SliceColumn<'_>> = SLICE_COLUMNS
            .iter()
            .zip(&rows.slices)
            .map(|(&name, (codes, values))| SliceColumn {
                name,
                codes,
                values,
            })
            .collect();
        let scored = ScoredColumns {
            predicted_at: &rows.predicted_at,
            probabilities: &rows.probabilities,
            labels: &rows.labels,
            slices: &slices,
        };
        let figures =
            churn_monitor::cohort_figures(&scored, options, |_, _| false).map_err(|e| {
                MetricsError::Compute {
                    version: *version,
                    reason: e.to_string(),
                }
            })?;
        for f in figures {
            let end = day_start(f.start_day + f.kind.days());
            let matures_at = end + Days::days(i64::from(maturity_days));
            let calibration = f.calibration.as_ref();
            out.push(CohortMetric {
                model_name: model_name.to_owned(),
                model_version: *version,
                source: *source,
                cohort: f.kind.as_str(),
                cohort_start: day_start(f.start_day).date_naive(),
                slice: f.slice,
                slice_value: f.slice_value.clone(),
                n_predictions: f.n_predictions as i64,
                n_labelled: f.n_labelled as i64,
                n_positive: f.n_positive as i64,
                label_coverage: f.label_coverage(),
                roc_auc: f.roc_auc,
                pr_auc: f.pr_auc,
                log_loss: f.log_loss,
                brier: f.brier,
                ece: calibration.map(|c| c.ece),
                calibration: calibration.map_or_else(
                    || json!([]),
                    |c| {
                        json!(c.bins.iter().map(|b| json!({
                            "lower": b.lower, "upper": b.upper, "n": b.count,
                            "mean_predicted": b.mean_predicted, "observed_rate": b.observed_rate,
                        })).collect::<Vec<_>>())
                    },
                ),
                provisional: now < matures_at,
                matures_at,
            });
        }
    }
    Ok(out)
}

/// Computes and upserts the cohort metrics of `model_name` whose cohorts are not final yet.
pub async fn compute_cohorts(
    pool: &PgPool,
    model_name: &str,
    options: ValidCalibrationOptions,
    maturity_days: u32,
    job_run_id: Option<Uuid>,
) -> Result<CohortReport, MetricsError> {
    let started = Instant::now();
    let now = Utc::now();
    let since = monitoring::final_frontier(pool, model_name).await?.map_or(
        DateTime::UNIX_EPOCH,
        |week: NaiveDate| {
            (week + Days::days(CohortKind::Week.days()))
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
        },
    );
    // Two reads on two connections: the log with its outcomes, and the warehouse's predictions.
    let (mut read, classified) = tokio::try_join!(
        monitoring::logged_predictions(pool, model_name, since),
        monitoring::classified_predictions(pool, model_name, since),
    )?;
    read.extend(classified);
    let predictions = read.iter().map(|(_, r)| r.predicted_at.len()).sum();
    let name = model_name.to_owned();
    let rows = tokio::task::spawn_blocking(move || {
        cohort_rows(&name, &read, &options, maturity_days, now)
    })
    .await
    .map_err(|e| MetricsError::Task(e.to_string()))??;
    let written = monitoring::upsert_cohort_metrics(pool, job_run_id, &rows).await?;
    Ok(CohortReport {
        predictions,
        rows: written,
        computed: rows.len(),
        finalised: rows.iter().filter(|r| !r.provisional).count(),
        since,
        seconds: started.elapsed().as_secs_f64(),
    })
}
