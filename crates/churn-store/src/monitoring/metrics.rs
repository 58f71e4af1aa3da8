//! Live classification metrics with their calibration bins: storing them, the newest live ROC AUC, and
//! a model's metric history for listings.

use chrono::{DateTime, Utc};
use churn_core::VersionNumber;
use sqlx::PgPool;
use uuid::Uuid;

use super::Window;
use crate::Error;

/// Classification metrics of one version on one window, with its calibration bins.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveMetrics {
    pub model_name: String,
    pub model_version: VersionNumber,
    pub window: Window,
    pub job_run_id: Option<Uuid>,
    pub n_samples: i64,
    pub n_positive: i64,
    pub threshold: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub log_loss: f64,
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub brier: f64,
    pub ece: Option<f64>,
    pub bins: Vec<CalibrationBin>,
}

/// One probability bin of a calibration table.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationBin {
    pub bin: i32,
    pub lower: f64,
    pub upper: f64,
    pub n_samples: i64,
    pub n_positive: i64,
    pub mean_predicted: Option<f64>,
    pub observed_rate: Option<f64>,
}

/// Stores live metrics (`metric_type = 'scheduled'`) and their bins, all in one transaction; returns
/// the new rows' ids in order.
pub async fn insert_live_metrics(pool: &PgPool, rows: &[LiveMetrics]) -> Result<Vec<i64>, Error> {
    let mut tx = pool.begin().await?;
    let mut ids = Vec::with_capacity(rows.len());
    for m in rows {
        let id = sqlx::query_scalar!(
            "insert into monitoring.model_metrics (model_name, model_version, metric_type, window_start,
                 window_end, window_name, job_run_id, n_samples, n_positive, threshold, accuracy,
                 precision, recall, f1, log_loss, roc_auc, pr_auc, brier, ece)
             values ($1, $2, 'scheduled', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                 $17, $18)
             returning metric_id",
            m.model_name,
            m.model_version.get(),
            m.window.start,
            m.window.end,
            m.window.name,
            m.job_run_id,
            i32::try_from(m.n_samples).unwrap_or(i32::MAX),
            i32::try_from(m.n_positive).unwrap_or(i32::MAX),
            m.threshold,
            m.accuracy,
            m.precision,
            m.recall,
            m.f1,
            m.log_loss,
            m.roc_auc,
            m.pr_auc,
            m.brier,
            m.ece,
        )
        .fetch_one(&mut *tx)
        .await?;
        for b in &m.bins {
            sqlx::query!(
                "insert into monitoring.calibration (metric_id, bin, lower_bound, upper_bound, n_samples,
                     n_positive, mean_predicted, observed_rate)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
                id,
                b.bin,
                b.lower,
                b.upper,
                i32::try_from(b.n_samples).unwrap_or(i32::MAX),
                i32::try_from(b.n_positive).unwrap_or(i32::MAX),
                b.mean_predicted,
                b.observed_rate,
            )
            .execute(&mut *tx)
            .await?;
        }
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}

/// Where a row of `monitoring.model_metrics` was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum MetricType {
    /// On the rows the model was fitted on (cross-validation).
    Training,
    Validation,
    /// On held-out rows at training time.
    Test,
    /// Live: on labelled predictions, by the metrics job.
    Scheduled,
}

impl MetricType {
    /// The name a listing shows: live rows are `live`, the others their stored name.
    pub fn label(self) -> &'static str {
        match self {
            MetricType::Training => "training",
            MetricType::Validation => "validation",
            MetricType::Test => "test",
            MetricType::Scheduled => "live",
        }
    }
}

/// One row of a model's metric history, for listings: training and test rows and each version's newest
/// live row per window.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSummary {
    pub model_version: i32,
    pub metric_type: MetricType,
    pub window_name: Option<String>,
    pub n_samples: i32,
    pub n_positive: i32,
    pub accuracy: Option<f64>,
    pub f1: Option<f64>,
    pub log_loss: Option<f64>,
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub brier: Option<f64>,
    pub ece: Option<f64>,
    pub computed_at: DateTime<Utc>,
}

/// The metrics of the `versions` newest versions of a model: every offline row and the newest live row
/// per window, by version (newest first) then type.
pub async fn metric_summaries(
    pool: &PgPool,
    model_name: &str,
    versions: i64,
) -> Result<Vec<MetricSummary>, Error> {
    Ok(sqlx::query_as!(
        MetricSummary,
        r#"select distinct on (model_version, metric_type, coalesce(window_name, ''))
                model_version, metric_type as "metric_type: MetricType", window_name, n_samples, n_positive, accuracy, f1, log_loss,
                roc_auc, pr_auc, brier, ece, computed_at
         from monitoring.model_metrics
         where model_name = $1
           and model_version in (select version from registry.model_versions where model_name = $1
                                 order by version desc limit $2)
         order by model_version desc, metric_type, coalesce(window_name, ''), computed_at desc"#,
        model_name,
        versions,
    )
    .fetch_all(pool)
    .await?)
}
