//! The console's reads over the warehouse, the run records and monitoring. Each reads an indexed range
//! or a small table, never the customers table as a whole, so a page costs the same with a thousand
//! customers or a million.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::Error;
use crate::ingestion::FileStatus;
use crate::ops::RejectionSource;

/// The newest live ROC AUC of a version.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveMetric {
    pub model_version: i32,
    pub window_name: Option<String>,
    pub roc_auc: Option<f64>,
    pub n_samples: i32,
    pub computed_at: DateTime<Utc>,
}

/// The newest live metrics row of every version of `model_name`.
pub async fn live_metrics(pool: &PgPool, model_name: &str) -> Result<Vec<LiveMetric>, Error> {
    Ok(sqlx::query_as!(
        LiveMetric,
        "select distinct on (model_version) model_version, window_name, roc_auc, n_samples, computed_at
         from monitoring.model_metrics
         where model_name = $1 and metric_type = 'scheduled'
         order by model_version, computed_at desc",
        model_name,
    )
    .fetch_all(pool)
    .await?)
}

/// A drift run's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftVerdict {
    pub run_id: Uuid,
    pub model_version: i32,
    /// `warehouse` or `api` (the classifier's logged traffic).
    pub source: String,
    pub n_current: i32,
    pub n_columns: i32,
    pub n_drifted: i32,
    pub share_drifted: f64,
    pub dataset_drift: bool,
    pub computed_at: DateTime<Utc>,
}

/// The newest `limit` drift runs, newest first.
pub async fn drift_verdicts(pool: &PgPool, limit: i64) -> Result<Vec<DriftVerdict>, Error> {
    Ok(sqlx::query_as!(
        DriftVerdict,
        "select run_id, model_version, source, n_current, n_columns, n_drifted, share_drifted,
                dataset_drift, computed_at
         from monitoring.drift_runs order by computed_at desc limit $1",
        limit,
    )
    .fetch_all(pool)
    .await?)
}

/// One column's drift in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftCell {
    pub run_id: Uuid,
    pub feature: String,
    pub column_type: Option<String>,
    pub statistic: String,
    pub value: f64,
    pub threshold: f64,
    pub drifted: bool,
    pub psi: Option<f64>,
}

/// The per-column results of the drift runs `run_ids`, by feature.
pub async fn drift_cells(pool: &PgPool, run_ids: &[Uuid]) -> Result<Vec<DriftCell>, Error> {
    Ok(sqlx::query_as!(
        DriftCell,
        r#"select run_id as "run_id!", feature, column_type, statistic, value, threshold, drifted, psi
           from monitoring.drift where run_id = any($1) order by feature"#,
        run_ids,
    )
    .fetch_all(pool)
    .await?)
}

/// Customers the generate job wrote in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteCount {
    pub minute: DateTime<Utc>,
    pub customers: i64,
}

/// Customers the generate job wrote, per minute of the last hour (from its run records).
pub async fn generated_per_minute(pool: &PgPool) -> Result<Vec<MinuteCount>, Error> {
    Ok(sqlx::query_as!(
        MinuteCount,
        r#"select date_trunc('minute', finished_at) as "minute!",
                  sum(rows_affected)::bigint as "customers!"
           from ops.job_runs
           where job_name = 'generate' and started_at >= now() - interval '70 minutes'
             and finished_at >= now() - interval '60 minutes' and rows_affected is not null
           group by 1 order by 1"#,
    )
    .fetch_all(pool)
    .await?)
}

/// When the newest customer was written, if any was.
pub async fn newest_customer(pool: &PgPool) -> Result<Option<DateTime<Utc>>, Error> {
    Ok(
        sqlx::query_scalar!("select max(inserted_at) from churn.customers")
            .fetch_one(pool)
            .await?,
    )
}

/// A landed file and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLine {
    pub object_key: String,
    pub status: FileStatus,
    pub rows_total: i64,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_rejected: i64,
    pub reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The 50 files ingested last.
pub async fn recent_files(pool: &PgPool) -> Result<Vec<FileLine>, Error> {
    Ok(sqlx::query_as!(
        FileLine,
        r#"select object_key, status as "status: FileStatus", rows_total, rows_inserted,
                  rows_updated, rows_rejected, reason, started_at, finished_at
           from ops.ingested_files order by ingested_at desc limit 50"#,
    )
    .fetch_all(pool)
    .await?)
}

/// Refused records of the last week, by source, field and rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionCount {
    pub source: RejectionSource,
    pub field: String,
    pub rule: String,
    pub records: i64,
}

/// Refused records of the last week per source, field and rule, most frequent first (100 at most).
pub async fn rejection_counts(pool: &PgPool) -> Result<Vec<RejectionCount>, Error> {
    Ok(sqlx::query_as!(
        RejectionCount,
        r#"select source as "source!: RejectionSource", field as "field!", rule as "rule!", count(*) as "records!"
           from monitoring.rejected_rows
           where rejected_at >= now() - interval '7 days'
           group by source, field, rule order by 4 desc, source, field, rule limit 100"#,
    )
    .fetch_all(pool)
    .await?)
}
