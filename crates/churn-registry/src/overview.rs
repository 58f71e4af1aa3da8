//! The console's reads over the registry: the champion, every version with its aliases, promotion
//! decisions, experiment runs with their parameters and metrics, and an AutoML run's leaderboard.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Error, RunStatus};

/// The champion version, with what the console shows of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChampionVersion {
    pub version: i32,
    pub created_at: DateTime<Utc>,
    /// When the champion alias last moved (to this version).
    pub champion_since: DateTime<Utc>,
    pub metrics: Value,
    /// The training run's `family` parameter.
    pub family: Option<String>,
}

/// The version the `champion` alias of `model_name` points at, if it points at one.
pub async fn champion_version(
    pool: &PgPool,
    model_name: &str,
) -> Result<Option<ChampionVersion>, Error> {
    Ok(sqlx::query_as!(
        ChampionVersion,
        r#"select v.version, v.created_at, a.updated_at as champion_since, v.metrics,
                  p.value as "family?"
           from registry.aliases a
           join registry.model_versions v on v.model_name = a.model_name and v.version = a.version
           left join registry.run_params p on p.run_id = v.run_id and p.key = 'family'
           where a.model_name = $1 and a.alias = 'champion'"#,
        model_name,
    )
    .fetch_optional(pool)
    .await?)
}

/// A registered version with its aliases, as the models page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionLine {
    pub version: i32,
    /// Sorted.
    pub aliases: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub description: String,
    /// The training run's `family` parameter.
    pub family: Option<String>,
    pub metrics: Value,
    pub lineage: Value,
    pub parent_version: Option<i32>,
    pub artifact_sha256: String,
    pub run_id: Option<Uuid>,
}

/// The newest `limit` versions of `model_name`, newest first.
pub async fn version_lines(
    pool: &PgPool,
    model_name: &str,
    limit: i64,
) -> Result<Vec<VersionLine>, Error> {
    Ok(sqlx::query_as!(
        VersionLine,
        r#"select v.version,
                  coalesce(array(select a.alias from registry.aliases a
                                 where a.model_name = v.model_name and a.version = v.version
                                 order by a.alias), '{}') as "aliases!",
                  v.created_at, v.description, p.value as "family?", v.metrics, v.lineage,
                  v.parent_version, v.artifact_sha256, v.run_id
           from registry.model_versions v
           left join registry.run_params p on p.run_id = v.run_id and p.key = 'family'
           where v.model_name = $1
           order by v.version desc limit $2"#,
        model_name,
        limit,
    )
    .fetch_all(pool)
    .await?)
}

pub use crate::runs::DecisionLine;

/// The newest `limit` decisions about `model_name`, newest first.
pub async fn decision_lines(
    pool: &PgPool,
    model_name: &str,
    limit: i64,
) -> Result<Vec<DecisionLine>, Error> {
    crate::runs::decision_lines(pool, model_name, Some(limit)).await
}

/// An experiment run as the runs page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRun {
    pub run_id: Uuid,
    pub experiment: String,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub training_rows: Option<i64>,
    pub code_version: String,
}

/// The newest `limit` runs, newest first.
pub async fn experiment_runs(pool: &PgPool, limit: i64) -> Result<Vec<ExperimentRun>, Error> {
    Ok(sqlx::query_as!(
        ExperimentRun,
        r#"select run_id, experiment, status as "status: RunStatus", started_at, ended_at,
                  training_rows, code_version
           from registry.runs order by started_at desc limit $1"#,
        limit,
    )
    .fetch_all(pool)
    .await?)
}

/// One parameter of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunParam {
    pub run_id: Uuid,
    pub key: String,
    pub value: String,
}

/// The parameters of the runs `run_ids`, by key.
pub async fn params_of_runs(pool: &PgPool, run_ids: &[Uuid]) -> Result<Vec<RunParam>, Error> {
    Ok(sqlx::query_as!(
        RunParam,
        "select run_id, key, value from registry.run_params where run_id = any($1) order by key",
        run_ids,
    )
    .fetch_all(pool)
    .await?)
}

/// One metric value of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetric {
    pub run_id: Uuid,
    pub key: String,
    pub value: f64,
}

/// The final metrics (step 0) of the runs `run_ids`, by key, leaving out the per-step metric `except`.
pub async fn final_metrics_of_runs(
    pool: &PgPool,
    run_ids: &[Uuid],
    except: &str,
) -> Result<Vec<RunMetric>, Error> {
    Ok(sqlx::query_as!(
        RunMetric,
        "select run_id, key, value from registry.run_metrics
         where run_id = any($1) and key <> $2 and step = 0 order by key",
        run_ids,
        except,
    )
    .fetch_all(pool)
    .await?)
}

/// One step of a per-step metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricStep {
    pub step: i64,
    pub value: f64,
}

/// The `limit` best steps of a run's metric `key` (highest value first, then earliest step).
pub async fn best_steps(
    pool: &PgPool,
    run_id: Uuid,
    key: &str,
    limit: i64,
) -> Result<Vec<MetricStep>, Error> {
    Ok(sqlx::query_as!(
        MetricStep,
        "select step, value from registry.run_metrics where run_id = $1 and key = $2
         order by value desc, step limit $3",
        run_id,
        key,
        limit,
    )
    .fetch_all(pool)
    .await?)
}
