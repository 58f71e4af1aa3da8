//! Drift runs with their per-column drift: storing a run, the newest verdict of a version, and the
//! newest run of a model with its columns, each for one source of current data.

use chrono::{DateTime, Utc};
use churn_core::VersionNumber;
use sqlx::PgPool;
use uuid::Uuid;

use super::Window;
use crate::Error;

/// What a drift run's current data was (`monitoring.drift_runs.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriftSource {
    /// The customers written to the warehouse in the window: synthetic and ingested.
    Warehouse,
    /// The classifier's logged traffic: the customers the champion scored through single and batch calls.
    Api,
}

impl DriftSource {
    pub const ALL: [DriftSource; 2] = [DriftSource::Warehouse, DriftSource::Api];

    pub fn as_str(self) -> &'static str {
        match self {
            DriftSource::Warehouse => "warehouse",
            DriftSource::Api => "api",
        }
    }
}

impl std::fmt::Display for DriftSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A drift run's dataset-level summary (`monitoring.drift_runs`).
#[derive(Debug, Clone, PartialEq)]
pub struct DriftRun {
    pub run_id: Uuid,
    pub job_run_id: Option<Uuid>,
    pub model_name: String,
    pub model_version: VersionNumber,
    pub source: DriftSource,
    pub window: Window,
    pub n_reference: i64,
    pub n_current: i64,
    pub n_columns: i32,
    pub n_drifted: i32,
    pub share_drifted: f64,
    pub drift_share: f64,
    pub dataset_drift: bool,
    /// The churn probability's drift: statistic, score and verdict.
    pub prediction: Option<(String, f64, bool)>,
}

/// One column's drift in a run (`monitoring.drift`).
#[derive(Debug, Clone, PartialEq)]
pub struct DriftColumn {
    pub feature: String,
    /// `numerical` or `categorical`.
    pub column_type: String,
    pub statistic: String,
    pub value: f64,
    pub threshold: f64,
    pub drifted: bool,
    pub psi: f64,
    pub n_reference: i64,
    pub n_current: i64,
}

/// Stores a drift run with its columns in one transaction.
pub async fn insert_drift_run(
    pool: &PgPool,
    run: &DriftRun,
    columns: &[DriftColumn],
) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    let (statistic, score, drifted) = match &run.prediction {
        Some((s, v, d)) => (Some(s.as_str()), Some(*v), Some(*d)),
        None => (None, None, None),
    };
    sqlx::query!(
        "insert into monitoring.drift_runs (run_id, job_run_id, model_name, model_version, window_start,
             window_end, n_reference, n_current, n_columns, n_drifted, share_drifted, drift_share,
             dataset_drift, prediction_statistic, prediction_score, prediction_drifted, source)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        run.run_id,
        run.job_run_id,
        run.model_name,
        run.model_version.get(),
        run.window.start,
        run.window.end,
        i32::try_from(run.n_reference).unwrap_or(i32::MAX),
        i32::try_from(run.n_current).unwrap_or(i32::MAX),
        run.n_columns,
        run.n_drifted,
        run.share_drifted,
        run.drift_share,
        run.dataset_drift,
        statistic,
        score,
        drifted,
        run.source.as_str(),
    )
    .execute(&mut *tx)
    .await?;
    for c in columns {
        sqlx::query!(
            "insert into monitoring.drift (model_name, model_version, feature, statistic, value, threshold,
                 drifted, window_start, window_end, n_samples, run_id, column_type, psi, n_reference)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            run.model_name,
            run.model_version.get(),
            c.feature,
            c.statistic,
            c.value,
            c.threshold,
            c.drifted,
            run.window.start,
            run.window.end,
            i32::try_from(c.n_current).unwrap_or(i32::MAX),
            run.run_id,
            c.column_type,
            c.psi,
            i32::try_from(c.n_reference).unwrap_or(i32::MAX),
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The newest warehouse drift run of a version computed after `since`: (run id, dataset drift, share
/// drifted). The retrain trigger reads this one; [`latest_drift_of`] reads any source.
pub async fn latest_drift(
    pool: &PgPool,
    model_name: &str,
    version: VersionNumber,
    since: DateTime<Utc>,
) -> Result<Option<(Uuid, bool, f64)>, Error> {
    latest_drift_of(pool, model_name, version, DriftSource::Warehouse, since).await
}

/// The newest drift run of a version on one source computed after `since`: (run id, dataset drift,
/// share drifted).
pub async fn latest_drift_of(
    pool: &PgPool,
    model_name: &str,
    version: VersionNumber,
    source: DriftSource,
    since: DateTime<Utc>,
) -> Result<Option<(Uuid, bool, f64)>, Error> {
    Ok(sqlx::query!(
        "select run_id, dataset_drift, share_drifted from monitoring.drift_runs
         where model_name = $1 and model_version = $2 and source = $3 and computed_at > $4
         order by computed_at desc limit 1",
        model_name,
        version.get(),
        source.as_str(),
        since,
    )
    .fetch_optional(pool)
    .await?
    .map(|r| (r.run_id, r.dataset_drift, r.share_drifted)))
}

/// The newest drift run of a model on one source with its columns (most drifted first), if any.
pub async fn newest_drift_run(
    pool: &PgPool,
    model_name: &str,
    source: DriftSource,
) -> Result<Option<(DriftRun, Vec<DriftColumn>)>, Error> {
    let Some(row) = sqlx::query!(
        r#"select run_id, job_run_id, model_name, model_version as "model_version: VersionNumber",
                window_start, window_end, n_reference,
                n_current, n_columns, n_drifted, share_drifted, drift_share, dataset_drift,
                prediction_statistic, prediction_score, prediction_drifted
         from monitoring.drift_runs where model_name = $1 and source = $2
         order by computed_at desc limit 1"#,
        model_name,
        source.as_str(),
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let prediction = match (
        row.prediction_statistic,
        row.prediction_score,
        row.prediction_drifted,
    ) {
        (Some(statistic), Some(score), Some(drifted)) => Some((statistic, score, drifted)),
        _ => None,
    };
    let run = DriftRun {
        run_id: row.run_id,
        job_run_id: row.job_run_id,
        model_name: row.model_name,
        model_version: row.model_version,
        source,
        window: Window {
            name: "drift".to_owned(),
            start: row.window_start,
            end: row.window_end,
        },
        n_reference: i64::from(row.n_reference),
        n_current: i64::from(row.n_current),
        n_columns: row.n_columns,
        n_drifted: row.n_drifted,
        share_drifted: row.share_drifted,
        drift_share: row.drift_share,
        dataset_drift: row.dataset_drift,
        prediction,
    };
    let columns = sqlx::query_as!(
        DriftColumn,
        r#"select feature, coalesce(column_type, '') as "column_type!", statistic, value, threshold,
                  drifted, coalesce(psi, 'NaN'::float8) as "psi!",
                  coalesce(n_reference, 0)::int8 as "n_reference!", n_samples::int8 as "n_current!"
           from monitoring.drift where run_id = $1 order by drifted desc, feature"#,
        run.run_id,
    )
    .fetch_all(pool)
    .await?;
    Ok(Some((run, columns)))
}
