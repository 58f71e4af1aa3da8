//! What each console page shows, read from the warehouse. Every query reads an indexed range or a small
//! table (the registry, run records, monitoring results), never the customers table as a whole, so a page
//! costs the same with a thousand customers or a million.

use chrono::{DateTime, Utc};
use churn_core::VersionMetrics;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Error;

pub use churn_store::ops::JobRun as RunLine;

/// Seconds from a run's start to its finish, once finished.
pub fn run_seconds(run: &RunLine) -> Option<f64> {
    run.finished_at
        .map(|end| (end - run.started_at).num_milliseconds() as f64 / 1000.0)
}

/// A job as the runner knows it (schedule and switches come from the service, not the database).
#[derive(Debug, Clone)]
pub struct JobLine {
    pub name: String,
    pub schedule: String,
    pub enabled: bool,
    pub paused: bool,
    pub next_run: Option<DateTime<Utc>>,
    /// The last run's status and start.
    pub last_run: Option<(String, DateTime<Utc>)>,
}

/// The served model and how it does.
#[derive(Debug, Clone)]
pub struct Champion {
    pub version: i32,
    pub family: Option<String>,
    pub created_at: DateTime<Utc>,
    pub champion_since: DateTime<Utc>,
    pub test_roc_auc: Option<f64>,
    pub live: Option<LiveMetric>,
}

/// The newest live ROC AUC of a version.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LiveMetric {
    pub model_version: i32,
    pub window_name: Option<String>,
    pub roc_auc: Option<f64>,
    pub n_samples: i32,
    pub computed_at: DateTime<Utc>,
}

/// The newest drift run's verdict.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DriftVerdict {
    pub run_id: Uuid,
    pub model_version: i32,
    pub n_current: i32,
    pub n_columns: i32,
    pub n_drifted: i32,
    pub share_drifted: f64,
    pub dataset_drift: bool,
    pub computed_at: DateTime<Utc>,
}

/// The overview page.
#[derive(Debug, Clone)]
pub struct Overview {
    pub champion: Option<Champion>,
    /// Customers the generate job wrote, per minute of the last hour (from its run records).
    pub per_minute: Vec<(DateTime<Utc>, i64)>,
    pub newest_customer: Option<DateTime<Utc>>,
    pub drift: Option<DriftVerdict>,
    pub latest_runs: Vec<RunLine>,
}

/// The newest `limit` runs, of one job or of all.
pub async fn recent_runs(
    pool: &PgPool,
    job: Option<&str>,
    limit: i64,
) -> Result<Vec<RunLine>, Error> {
    Ok(match job {
        Some(job) => churn_store::ops::list_runs(pool, job, None, limit, 0).await?,
        None => churn_store::ops::recent_runs(pool, limit).await?,
    })
}

/// The champion of `model_name`, if any, with its newest live ROC AUC.
pub async fn champion(pool: &PgPool, model_name: &str) -> Result<Option<Champion>, Error> {
    type Row = (i32, DateTime<Utc>, DateTime<Utc>, Value, Option<String>);
    let row: Option<Row> = sqlx::query_as(
        "select v.version, v.created_at, a.updated_at, v.metrics, p.value
         from registry.aliases a
         join registry.model_versions v on v.model_name = a.model_name and v.version = a.version
         left join registry.run_params p on p.run_id = v.run_id and p.key = 'family'
         where a.model_name = $1 and a.alias = 'champion'",
    )
    .bind(model_name)
    .fetch_optional(pool)
    .await?;
    let Some((version, created_at, champion_since, metrics, family)) = row else {
        return Ok(None);
    };
    let live = live_metrics(pool, model_name)
        .await?
        .into_iter()
        .find(|m| m.model_version == version);
    Ok(Some(Champion {
        version,
        family,
        created_at,
        champion_since,
        test_roc_auc: VersionMetrics::from_json(&metrics).test_roc_auc,
        live,
    }))
}

/// The newest live metrics row of every version of `model_name`.
pub async fn live_metrics(pool: &PgPool, model_name: &str) -> Result<Vec<LiveMetric>, Error> {
    Ok(sqlx::query_as(
        "select distinct on (model_version) model_version, window_name, roc_auc, n_samples, computed_at
         from monitoring.model_metrics
         where model_name = $1 and metric_type = 'scheduled'
         order by model_version, computed_at desc",
    )
    .bind(model_name)
    .fetch_all(pool)
    .await?)
}

/// The newest drift run, if any.
pub async fn newest_drift(pool: &PgPool) -> Result<Option<DriftVerdict>, Error> {
    Ok(sqlx::query_as(
        "select run_id, model_version, n_current, n_columns, n_drifted, share_drifted, dataset_drift,
                computed_at
         from monitoring.drift_runs order by computed_at desc limit 1",
    )
    .fetch_optional(pool)
    .await?)
}

/// Everything on the overview page.
pub async fn overview(pool: &PgPool, model_name: &str) -> Result<Overview, Error> {
    let per_minute: Vec<(DateTime<Utc>, i64)> = sqlx::query_as(
        "select date_trunc('minute', finished_at), sum(rows_affected)::bigint
         from ops.job_runs
         where job_name = 'generate' and started_at >= now() - interval '70 minutes'
           and finished_at >= now() - interval '60 minutes' and rows_affected is not null
         group by 1 order by 1",
    )
    .fetch_all(pool)
    .await?;
    let newest_customer: Option<DateTime<Utc>> =
        sqlx::query_scalar("select max(inserted_at) from churn.customers")
            .fetch_one(pool)
            .await?;
    Ok(Overview {
        champion: champion(pool, model_name).await?,
        per_minute,
        newest_customer,
        drift: newest_drift(pool).await?,
        latest_runs: churn_store::ops::latest_runs(pool).await?,
    })
}

/// One registered version with everything the models page shows.
#[derive(Debug, Clone)]
pub struct VersionCard {
    pub version: i32,
    pub aliases: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub description: String,
    pub family: Option<String>,
    pub metrics: Value,
    pub lineage: Value,
    pub parent_version: Option<i32>,
    pub artifact_sha256: String,
    pub run_id: Option<Uuid>,
    pub live: Option<LiveMetric>,
}

impl VersionCard {
    /// The metrics stored with the version, typed.
    pub fn stored_metrics(&self) -> VersionMetrics {
        VersionMetrics::from_json(&self.metrics)
    }

    /// Feature importance as stored at training (field, drop in ROC AUC), largest first.
    pub fn importance(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .stored_metrics()
            .feature_importance
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.field, i.importance))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }
}

/// A champion/challenger decision with its evidence.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Decision {
    pub candidate_version: i32,
    pub champion_version: Option<i32>,
    pub metric: String,
    pub candidate_score: Option<f64>,
    pub champion_score: Option<f64>,
    pub margin: f64,
    pub promoted: bool,
    pub reason: String,
    pub evidence: Value,
    pub decided_at: DateTime<Utc>,
}

/// Every version of `model_name`, newest first, and the newest decisions.
pub async fn models(
    pool: &PgPool,
    model_name: &str,
) -> Result<(Vec<VersionCard>, Vec<Decision>), Error> {
    type Row = (
        i32,
        Vec<String>,
        DateTime<Utc>,
        String,
        Option<String>,
        Value,
        Value,
        Option<i32>,
        String,
        Option<Uuid>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select v.version,
                coalesce(array(select a.alias from registry.aliases a
                               where a.model_name = v.model_name and a.version = v.version
                               order by a.alias), '{}'),
                v.created_at, v.description, p.value, v.metrics, v.lineage, v.parent_version,
                v.artifact_sha256, v.run_id
         from registry.model_versions v
         left join registry.run_params p on p.run_id = v.run_id and p.key = 'family'
         where v.model_name = $1
         order by v.version desc limit 200",
    )
    .bind(model_name)
    .fetch_all(pool)
    .await?;
    let live = live_metrics(pool, model_name).await?;
    let cards = rows
        .into_iter()
        .map(
            |(
                version,
                aliases,
                created_at,
                description,
                family,
                metrics,
                lineage,
                parent,
                sha,
                run,
            )| {
                VersionCard {
                    version,
                    aliases,
                    created_at,
                    description,
                    family,
                    metrics,
                    lineage,
                    parent_version: parent,
                    artifact_sha256: sha,
                    run_id: run,
                    live: live.iter().find(|m| m.model_version == version).cloned(),
                }
            },
        )
        .collect();
    let decisions = sqlx::query_as(
        "select candidate_version, champion_version, metric, candidate_score, champion_score, margin,
                promoted, reason, evidence, decided_at
         from registry.promotion_decisions where model_name = $1
         order by decided_at desc limit 50",
    )
    .bind(model_name)
    .fetch_all(pool)
    .await?;
    Ok((cards, decisions))
}

/// An experiment run with its parameters and final metrics.
#[derive(Debug, Clone)]
pub struct RunCard {
    pub run_id: Uuid,
    pub experiment: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub training_rows: Option<i64>,
    pub code_version: String,
    pub params: Vec<(String, String)>,
    pub metrics: Vec<(String, f64)>,
}

/// The key under which each AutoML trial's cross-validated ROC AUC is logged (step = trial number).
pub const TRIAL_METRIC: &str = "trial_cv_roc_auc";

/// The newest experiment runs, and the AutoML leaderboard (trial, CV ROC AUC; best first) of `selected`
/// or else of the newest run.
pub async fn runs(
    pool: &PgPool,
    selected: Option<Uuid>,
) -> Result<(Vec<RunCard>, Option<Uuid>, Vec<(i64, f64)>), Error> {
    type Row = (
        Uuid,
        String,
        String,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<i64>,
        String,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select run_id, experiment, status, started_at, ended_at, training_rows, code_version
         from registry.runs order by started_at desc limit 50",
    )
    .fetch_all(pool)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let params: Vec<(Uuid, String, String)> = sqlx::query_as(
        "select run_id, key, value from registry.run_params where run_id = any($1) order by key",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let metrics: Vec<(Uuid, String, f64)> = sqlx::query_as(
        "select run_id, key, value from registry.run_metrics
         where run_id = any($1) and key <> $2 and step = 0 order by key",
    )
    .bind(&ids)
    .bind(TRIAL_METRIC)
    .fetch_all(pool)
    .await?;
    let cards: Vec<RunCard> = rows
        .into_iter()
        .map(
            |(run_id, experiment, status, started_at, ended_at, training_rows, code_version)| {
                RunCard {
                    run_id,
                    experiment,
                    status,
                    started_at,
                    ended_at,
                    training_rows,
                    code_version,
                    params: params
                        .iter()
                        .filter(|p| p.0 == run_id)
                        .map(|p| (p.1.clone(), p.2.clone()))
                        .collect(),
                    metrics: metrics
                        .iter()
                        .filter(|m| m.0 == run_id)
                        .map(|m| (m.1.clone(), m.2))
                        .collect(),
                }
            },
        )
        .collect();
    let board_run = selected.or_else(|| cards.first().map(|c| c.run_id));
    let board = match board_run {
        Some(run) => {
            sqlx::query_as(
                "select step, value from registry.run_metrics where run_id = $1 and key = $2
                 order by value desc, step limit 25",
            )
            .bind(run)
            .bind(TRIAL_METRIC)
            .fetch_all(pool)
            .await?
        }
        None => Vec::new(),
    };
    Ok((cards, board_run, board))
}

/// One column's drift in one run.
#[derive(Debug, Clone, sqlx::FromRow)]
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

/// The drift page: the newest runs (oldest first) and their per-column results.
#[derive(Debug, Clone)]
pub struct DriftHistory {
    pub runs: Vec<DriftVerdict>,
    pub cells: Vec<DriftCell>,
}

/// The newest `limit` drift runs with their columns.
pub async fn drift(pool: &PgPool, limit: i64) -> Result<DriftHistory, Error> {
    let mut runs: Vec<DriftVerdict> = sqlx::query_as(
        "select run_id, model_version, n_current, n_columns, n_drifted, share_drifted, dataset_drift,
                computed_at
         from monitoring.drift_runs order by computed_at desc limit $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    runs.reverse();
    let ids: Vec<Uuid> = runs.iter().map(|r| r.run_id).collect();
    let cells = sqlx::query_as(
        "select run_id, feature, column_type, statistic, value, threshold, drifted, psi
         from monitoring.drift where run_id = any($1) order by feature",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(DriftHistory { runs, cells })
}

/// A landed file and what became of it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FileLine {
    pub object_key: String,
    pub status: String,
    pub rows_total: i64,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_rejected: i64,
    pub reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Refused records of the last week, by source, field and rule.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RejectionCount {
    pub source: String,
    pub field: String,
    pub rule: String,
    pub records: i64,
}

/// The data page: the newest landed files and the reasons records were refused.
pub async fn data(pool: &PgPool) -> Result<(Vec<FileLine>, Vec<RejectionCount>), Error> {
    let files = sqlx::query_as(
        "select object_key, status, rows_total, rows_inserted, rows_updated, rows_rejected, reason,
                started_at, finished_at
         from ops.ingested_files order by ingested_at desc limit 50",
    )
    .fetch_all(pool)
    .await?;
    let reasons = sqlx::query_as(
        "select source, field, rule, count(*) as records from monitoring.rejected_rows
         where rejected_at >= now() - interval '7 days'
         group by source, field, rule order by records desc, source, field, rule limit 100",
    )
    .fetch_all(pool)
    .await?;
    Ok((files, reasons))
}
