//! Retrain triggers: when the last training was, storing a trigger under its cooldown, and a run
//! claiming the waiting triggers; replicas take turns on one advisory lock.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use crate::Error;

/// When the newest version of `model_name` was registered: "the last training".
pub async fn last_training(
    pool: &PgPool,
    model_name: &str,
) -> Result<Option<DateTime<Utc>>, Error> {
    Ok(sqlx::query_scalar!(
        "select max(created_at) from registry.model_versions where model_name = $1",
        model_name,
    )
    .fetch_one(pool)
    .await?)
}

/// What [`request_retrain`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerOutcome {
    /// A new trigger was stored, waiting for a retrain run to claim it.
    Stored { trigger_id: i64 },
    /// A trigger is already waiting for a run.
    Pending {
        trigger_id: i64,
        reason: RetrainReason,
    },
    /// A triggered retrain happened within the cooldown: nothing stored.
    CoolingDown { last: DateTime<Utc> },
}

/// Why a retrain was asked for (`ops.retrain_triggers.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum RetrainReason {
    Schedule,
    Manual,
    DatasetDrift,
    LiveAucDrop,
    NewLabels,
    Bootstrap,
}

impl RetrainReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RetrainReason::Schedule => "schedule",
            RetrainReason::Manual => "manual",
            RetrainReason::DatasetDrift => "dataset_drift",
            RetrainReason::LiveAucDrop => "live_auc_drop",
            RetrainReason::NewLabels => "new_labels",
            RetrainReason::Bootstrap => "bootstrap",
        }
    }
}

/// The reasons that count toward the cooldown (the evidence-driven ones, not cron or a person).
pub const EVIDENCE_REASONS: [RetrainReason; 3] = [
    RetrainReason::DatasetDrift,
    RetrainReason::LiveAucDrop,
    RetrainReason::NewLabels,
];

/// Stores a retrain trigger unless one is already waiting or a triggered retrain happened within
/// `cooldown`; replicas deciding at once take turns on a lock, so one trigger is stored.
pub async fn request_retrain(
    pool: &PgPool,
    reason: RetrainReason,
    evidence: &Value,
    cooldown: std::time::Duration,
) -> Result<TriggerOutcome, Error> {
    let mut tx = pool.begin().await?;
    lock_retrain_triggers(&mut tx).await?;
    let pending = sqlx::query!(
        r#"select trigger_id, reason as "reason: RetrainReason" from ops.retrain_triggers
           where job_run_id is null order by triggered_at limit 1"#,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(pending) = pending {
        return Ok(TriggerOutcome::Pending {
            trigger_id: pending.trigger_id,
            reason: pending.reason,
        });
    }
    let cooldown_secs = cooldown.as_secs_f64();
    let last = sqlx::query_scalar!(
        "select max(triggered_at) from ops.retrain_triggers
         where reason = any($1) and triggered_at > now() - make_interval(secs => $2)",
        &EVIDENCE_REASONS.map(RetrainReason::as_str)[..] as &[&str],
        cooldown_secs,
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(last) = last {
        return Ok(TriggerOutcome::CoolingDown { last });
    }
    let trigger_id = sqlx::query_scalar!(
        "insert into ops.retrain_triggers (reason, evidence) values ($1, $2) returning trigger_id",
        reason as _,
        Json(evidence) as _,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(TriggerOutcome::Stored { trigger_id })
}

/// Takes the transaction-scoped lock that makes replicas deciding about retrain triggers take turns.
async fn lock_retrain_triggers(conn: &mut sqlx::PgConnection) -> Result<(), Error> {
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended('ops:retrain_triggers', 0)) as locked"
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// Returns the evidence triggers `job_run_id` claimed to the waiting queue (the run stopped before it
/// answered them); its own `schedule`/`manual` row stays with it. Returns how many were released.
pub async fn release_retrain_triggers(
    conn: &mut sqlx::PgConnection,
    job_run_id: Uuid,
) -> Result<u64, Error> {
    lock_retrain_triggers(conn).await?;
    Ok(sqlx::query!(
        "update ops.retrain_triggers set job_run_id = null where job_run_id = $1 and reason = any($2)",
        job_run_id,
        &EVIDENCE_REASONS.map(RetrainReason::as_str)[..] as &[&str],
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// A retrain trigger claimed by a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainTrigger {
    pub trigger_id: i64,
    pub reason: RetrainReason,
    pub evidence: Json<Value>,
    pub triggered_at: DateTime<Utc>,
}

/// Claims every waiting trigger for the run `job_run_id`; when none was waiting, records `fallback`
/// (`schedule` or `manual`) as the run's reason. Returns what the run answers to.
pub async fn claim_retrain_triggers(
    pool: &PgPool,
    job_run_id: Uuid,
    fallback: RetrainReason,
) -> Result<Vec<RetrainTrigger>, Error> {
    let mut tx = pool.begin().await?;
    lock_retrain_triggers(&mut tx).await?;
    // A retried attempt answers to what its first attempt claimed.
    let mut claimed = sqlx::query_as!(
        RetrainTrigger,
        r#"select trigger_id, reason as "reason: RetrainReason", evidence as "evidence: Json<Value>",
                  triggered_at
           from ops.retrain_triggers where job_run_id = $1"#,
        job_run_id,
    )
    .fetch_all(&mut *tx)
    .await?;
    if claimed.is_empty() {
        claimed = sqlx::query_as!(
            RetrainTrigger,
            r#"update ops.retrain_triggers set job_run_id = $1 where job_run_id is null
               returning trigger_id, reason as "reason: RetrainReason",
                         evidence as "evidence: Json<Value>", triggered_at"#,
            job_run_id,
        )
        .fetch_all(&mut *tx)
        .await?;
    }
    if claimed.is_empty() {
        claimed = sqlx::query_as!(
            RetrainTrigger,
            r#"insert into ops.retrain_triggers (job_run_id, reason) values ($1, $2)
               returning trigger_id, reason as "reason: RetrainReason",
                         evidence as "evidence: Json<Value>", triggered_at"#,
            job_run_id,
            fallback as _,
        )
        .fetch_all(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    claimed.sort_by_key(|t| t.trigger_id);
    Ok(claimed)
}
