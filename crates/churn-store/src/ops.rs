//! The job runner's records: runs in `ops.job_runs`, pause state in `ops.job_state`, the per-job advisory
//! lock that keeps one run of a job at a time across scheduler replicas, and rejected records.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::Error;
use crate::audit::{self, Action, Actor};

/// What started a run (`ops.job_runs.trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
    Event,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Event => "event",
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended (`ops.job_runs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Skipped,
    /// Stopped before it finished because it was told to (shutdown, a lost job lock, a pause): not a
    /// failure, so no alert counts it.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "running" => Some(RunStatus::Running),
            "succeeded" => Some(RunStatus::Succeeded),
            "failed" => Some(RunStatus::Failed),
            "skipped" => Some(RunStatus::Skipped),
            "interrupted" => Some(RunStatus::Interrupted),
            _ => None,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRun {
    pub job_run_id: Uuid,
    pub job_name: String,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub attempt: i32,
    pub host: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub rows_affected: Option<i64>,
    pub error: Option<String>,
    pub details: Json<Value>,
}

/// Records a run as started.
pub async fn insert_run(
    pool: &PgPool,
    run_id: Uuid,
    job: &str,
    trigger: Trigger,
    host: &str,
) -> Result<(), Error> {
    let mut conn = pool.acquire().await?;
    insert_run_on(&mut conn, run_id, job, trigger, host).await
}

/// Records a run started by hand, and who started it in the audit log, in one transaction.
pub async fn insert_manual_run(
    pool: &PgPool,
    run_id: Uuid,
    job: &str,
    host: &str,
    actor: &Actor,
) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    insert_run_on(&mut tx, run_id, job, Trigger::Manual, host).await?;
    audit::record(
        &mut tx,
        actor,
        Action::JobTrigger,
        job,
        &serde_json::json!({ "job_run_id": run_id }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_run_on(
    conn: &mut PgConnection,
    run_id: Uuid,
    job: &str,
    trigger: Trigger,
    host: &str,
) -> Result<(), Error> {
    sqlx::query!(
        "insert into ops.job_runs (job_run_id, job_name, trigger, status, host)
         values ($1, $2, $3, $4, $5)",
        run_id,
        job,
        trigger as _,
        RunStatus::Running as _,
        host,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that a run is on its `attempt`-th try.
pub async fn set_attempt(pool: &PgPool, run_id: Uuid, attempt: i32) -> Result<(), Error> {
    sqlx::query!(
        "update ops.job_runs set attempt = $2 where job_run_id = $1",
        run_id,
        attempt,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Closes a run with its outcome.
pub async fn finish_run(
    pool: &PgPool,
    run_id: Uuid,
    status: RunStatus,
    rows: Option<i64>,
    error: Option<&str>,
    details: &Value,
) -> Result<(), Error> {
    sqlx::query!(
        "update ops.job_runs set status = $2, finished_at = greatest(now(), started_at),
             rows_affected = $3, error = $4, details = $5
         where job_run_id = $1 and status = $6",
        run_id,
        status as _,
        rows,
        error,
        Json(details) as _,
        RunStatus::Running as _,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Closes a still-running run as interrupted and, in the same transaction, hands the retrain triggers
/// it had claimed from the waiting queue back to it, so the next retrain run answers to them. The rows
/// it inserted itself (its `schedule` or `manual` reason) stay with it as the record of what started
/// it. Returns whether the run was still running (a run already closed is left as it is).
pub async fn interrupt_run(
    pool: &PgPool,
    run_id: Uuid,
    rows: Option<i64>,
    details: &Value,
) -> Result<bool, Error> {
    let mut tx = pool.begin().await?;
    let closed = sqlx::query!(
        "update ops.job_runs set status = $2, finished_at = greatest(now(), started_at),
             rows_affected = $3, error = null, details = $4
         where job_run_id = $1 and status = $5",
        run_id,
        RunStatus::Interrupted as _,
        rows,
        Json(details) as _,
        RunStatus::Running as _,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if closed {
        crate::monitoring::release_retrain_triggers(&mut tx, run_id).await?;
    }
    tx.commit().await?;
    Ok(closed)
}

pub async fn get_run(pool: &PgPool, run_id: Uuid) -> Result<Option<JobRun>, Error> {
    Ok(sqlx::query_as!(
        JobRun,
        r#"select job_run_id, job_name, trigger as "trigger: Trigger", status as "status: RunStatus",
                  attempt, host, started_at, finished_at, rows_affected, error,
                  details as "details: Json<Value>"
           from ops.job_runs where job_run_id = $1"#,
        run_id,
    )
    .fetch_optional(pool)
    .await?)
}

/// A job's runs, newest first, optionally of one status; `limit` of them after skipping `offset`.
pub async fn list_runs(
    pool: &PgPool,
    job: &str,
    status: Option<RunStatus>,
    limit: i64,
    offset: i64,
) -> Result<Vec<JobRun>, Error> {
    Ok(sqlx::query_as!(
        JobRun,
        r#"select job_run_id, job_name, trigger as "trigger: Trigger", status as "status: RunStatus",
                  attempt, host, started_at, finished_at, rows_affected, error,
                  details as "details: Json<Value>"
           from ops.job_runs
           where job_name = $1 and ($2::text is null or status = $2)
           order by started_at desc, job_run_id desc limit $3 offset $4"#,
        job,
        status as Option<RunStatus>,
        limit,
        offset,
    )
    .fetch_all(pool)
    .await?)
}

/// The newest `limit` runs of every job, newest first.
pub async fn recent_runs(pool: &PgPool, limit: i64) -> Result<Vec<JobRun>, Error> {
    Ok(sqlx::query_as!(
        JobRun,
        r#"select job_run_id, job_name, trigger as "trigger: Trigger", status as "status: RunStatus",
                  attempt, host, started_at, finished_at, rows_affected, error,
                  details as "details: Json<Value>"
           from ops.job_runs order by started_at desc, job_run_id desc limit $1"#,
        limit,
    )
    .fetch_all(pool)
    .await?)
}

/// The newest run of each job.
pub async fn latest_runs(pool: &PgPool) -> Result<Vec<JobRun>, Error> {
    Ok(sqlx::query_as!(
        JobRun,
        r#"select distinct on (job_name)
                  job_run_id, job_name, trigger as "trigger: Trigger", status as "status: RunStatus",
                  attempt, host, started_at, finished_at, rows_affected, error,
                  details as "details: Json<Value>"
           from ops.job_runs
           order by job_name, started_at desc, job_run_id desc"#,
    )
    .fetch_all(pool)
    .await?)
}

/// Closes a job's runs left `running` (their scheduler died) as failed; the caller holds the job's lock,
/// which proves no live scheduler is running it. Returns how many were closed.
pub async fn close_abandoned(conn: &mut PgConnection, job: &str) -> Result<u64, Error> {
    Ok(sqlx::query!(
        "update ops.job_runs set status = $2, finished_at = greatest(now(), started_at),
             error = 'abandoned: the scheduler running it stopped before it finished'
         where job_name = $1 and status = $3",
        job,
        RunStatus::Failed as _,
        RunStatus::Running as _,
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Names of jobs with runs left `running`.
pub async fn jobs_with_running_runs(pool: &PgPool) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar!(
        "select distinct job_name from ops.job_runs where status = $1 order by job_name",
        RunStatus::Running as _,
    )
    .fetch_all(pool)
    .await?)
}

/// Whether a job is paused (for every replica).
pub async fn is_paused(pool: &PgPool, job: &str) -> Result<bool, Error> {
    Ok(
        sqlx::query_scalar!("select paused from ops.job_state where job_name = $1", job)
            .fetch_optional(pool)
            .await?
            .unwrap_or(false),
    )
}

/// Every paused job.
pub async fn paused_jobs(pool: &PgPool) -> Result<Vec<String>, Error> {
    Ok(
        sqlx::query_scalar!("select job_name from ops.job_state where paused order by job_name")
            .fetch_all(pool)
            .await?,
    )
}

/// Pauses or resumes a job.
pub async fn set_paused(pool: &PgPool, job: &str, paused: bool, by: &str) -> Result<(), Error> {
    let mut conn = pool.acquire().await?;
    set_paused_on(&mut conn, job, paused, by).await
}

/// Pauses or resumes a job by hand, and records who did in the audit log, in one transaction.
pub async fn set_paused_by(
    pool: &PgPool,
    job: &str,
    paused: bool,
    actor: &Actor,
) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    set_paused_on(&mut tx, job, paused, &actor.name).await?;
    let action = if paused {
        Action::JobPause
    } else {
        Action::JobResume
    };
    audit::record(&mut tx, actor, action, job, &serde_json::json!({})).await?;
    tx.commit().await?;
    Ok(())
}

async fn set_paused_on(
    conn: &mut PgConnection,
    job: &str,
    paused: bool,
    by: &str,
) -> Result<(), Error> {
    sqlx::query!(
        "insert into ops.job_state (job_name, paused, updated_by) values ($1, $2, $3)
         on conflict (job_name) do update
             set paused = excluded.paused, updated_at = now(), updated_by = excluded.updated_by",
        job,
        paused,
        by,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A job's advisory lock, held by a connection of its own for as long as the run lasts: another replica
/// (or another task of this one) trying the same job sees it taken. Dropping it closes the connection,
/// which releases the lock.
#[derive(Debug)]
pub struct JobLock {
    conn: PgConnection,
    job: String,
}

impl JobLock {
    /// Takes the job's lock if it is free; `None` when a run holds it.
    pub async fn try_acquire(database_url: &str, job: &str) -> Result<Option<JobLock>, Error> {
        let mut conn = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            PgConnection::connect(database_url),
        )
        .await
        .map_err(|_| {
            Error::Connect(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connecting for the job lock took longer than 10 s",
            )))
        })?
        .map_err(Error::Connect)?;
        let taken = sqlx::query_scalar!(
            r#"select pg_try_advisory_lock(hashtextextended('job:' || $1, 0)) as "taken!""#,
            job,
        )
        .fetch_one(&mut conn)
        .await?;
        if taken {
            Ok(Some(JobLock {
                conn,
                job: job.to_owned(),
            }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Whether the lock is still held: a session lock lasts as long as its session, so the connection
    /// answering is proof (a killed connection has released it).
    pub async fn is_held(&mut self) -> bool {
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sqlx::query!("select 1 as alive").fetch_one(&mut self.conn),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    /// The lock's own connection, e.g. to close abandoned runs while holding it.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Releases the lock and closes its connection.
    pub async fn release(mut self) {
        let _ = sqlx::query!(
            "select pg_advisory_unlock(hashtextextended('job:' || $1, 0)) as released",
            self.job,
        )
        .fetch_one(&mut self.conn)
        .await;
        let _ = self.conn.close().await;
    }
}

/// A record a job could not take, with every error it had.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// 1-based position in its batch or file.
    pub line_number: i64,
    pub raw_record: String,
    pub errors: Value,
}

/// What refused a record (`ops.rejected_records.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum RejectionSource {
    /// A landed file's row, by the file loader.
    File,
    /// A synthesized customer, by the generate job.
    Generate,
    /// A row of a file given to `POST /ingest`.
    Ingest,
    /// A row of a batch-scoring file.
    Score,
}

impl RejectionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionSource::File => "file",
            RejectionSource::Generate => "generate",
            RejectionSource::Ingest => "ingest",
            RejectionSource::Score => "score",
        }
    }
}

impl std::fmt::Display for RejectionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stores rejected records of a job run.
pub async fn insert_rejected(
    pool: &PgPool,
    source: RejectionSource,
    job_run_id: Option<Uuid>,
    file_id: Option<Uuid>,
    rejected: &[Rejected],
) -> Result<(), Error> {
    if rejected.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = rejected.iter().map(|r| r.line_number).collect();
    let raws: Vec<&str> = rejected.iter().map(|r| r.raw_record.as_str()).collect();
    let errors: Vec<Json<&Value>> = rejected.iter().map(|r| Json(&r.errors)).collect();
    sqlx::query!(
        "insert into ops.rejected_records (source, job_run_id, file_id, line_number, raw_record, errors)
         select $1, $2, $3, line, raw, errors
         from unnest($4::bigint[], $5::text[], $6::jsonb[]) as r(line, raw, errors)",
        source as RejectionSource,
        job_run_id,
        file_id,
        &lines,
        &raws as &[&str],
        &errors as &[Json<&Value>],
    )
    .execute(pool)
    .await?;
    Ok(())
}
