//! Ingestion's records: a landed file's row in `ops.ingested_files` (claimed by its content hash,
//! advanced one committed batch at a time, closed as processed or failed), the rows it rejected in
//! `ops.rejected_records`, and the files batch scoring has written (`ops.scored_files`).

use futures::stream::{BoxStream, StreamExt};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::Error;
use crate::ops::Rejected;

/// Where a landed file stands (`ops.ingested_files.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// Claimed; its batches are being written (or a crash left it here, to be resumed).
    Processing,
    Processed,
    Failed,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Processing => "processing",
            FileStatus::Processed => "processed",
            FileStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for FileStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored state of one file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestedFile {
    pub file_id: Uuid,
    pub object_key: String,
    pub sha256: String,
    pub status: FileStatus,
    /// The last line written (1, the header, before any batch).
    pub checkpoint_line: i64,
    pub rows_total: i64,
    pub rows_accepted: i64,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_rejected: i64,
    pub reason: Option<String>,
    pub final_key: Option<String>,
}

/// The row for these bytes: an existing one whatever its status (the same bytes may have landed under
/// another key), else a new `processing` one under `key`.
pub async fn claim_file(pool: &PgPool, key: &str, sha256: &str) -> Result<IngestedFile, Error> {
    sqlx::query!(
        "insert into ops.ingested_files
             (file_id, object_key, sha256, rows_total, rows_accepted, rows_rejected, status)
         values ($1, $2, $3, 0, 0, 0, 'processing')
         on conflict (sha256) do nothing",
        Uuid::new_v4(),
        key,
        sha256,
    )
    .execute(pool)
    .await?;
    Ok(sqlx::query_as!(
        IngestedFile,
        r#"select file_id, object_key, sha256, status as "status: FileStatus", checkpoint_line,
                  rows_total, rows_accepted, rows_inserted, rows_updated, rows_rejected, reason,
                  final_key
           from ops.ingested_files where sha256 = $1"#,
        sha256,
    )
    .fetch_one(pool)
    .await?)
}

/// The latest file ingested under `key`, for an event about an object that has moved on already.
pub async fn latest_file_by_key(pool: &PgPool, key: &str) -> Result<Option<IngestedFile>, Error> {
    Ok(sqlx::query_as!(
        IngestedFile,
        r#"select file_id, object_key, sha256, status as "status: FileStatus", checkpoint_line,
                  rows_total, rows_accepted, rows_inserted, rows_updated, rows_rejected, reason,
                  final_key
           from ops.ingested_files where object_key = $1
           order by started_at desc limit 1"#,
        key,
    )
    .fetch_optional(pool)
    .await?)
}

/// The file with this id, if there is one (`GET /ingest/files/{id}`).
pub async fn find_file(pool: &PgPool, file_id: Uuid) -> Result<Option<IngestedFile>, Error> {
    Ok(sqlx::query_as!(
        IngestedFile,
        r#"select file_id, object_key, sha256, status as "status: FileStatus", checkpoint_line,
                  rows_total, rows_accepted, rows_inserted, rows_updated, rows_rejected, reason,
                  final_key
           from ops.ingested_files where file_id = $1"#,
        file_id,
    )
    .fetch_optional(pool)
    .await?)
}

/// The file with this id, which the caller knows exists.
pub async fn file_by_id(pool: &PgPool, file_id: Uuid) -> Result<IngestedFile, Error> {
    find_file(pool, file_id)
        .await?
        .ok_or_else(|| sqlx::Error::RowNotFound.into())
}

/// Locks a `processing` file's row until the caller's transaction ends and returns its checkpoint;
/// none when the file is no longer processing or another worker holds the lock. A file is written in
/// one transaction, so a second worker would otherwise wait out the whole file on a pooled connection:
/// it stops at once instead (`nowait`).
pub async fn lock_checkpoint(conn: &mut PgConnection, file_id: Uuid) -> Result<Option<i64>, Error> {
    let locked = sqlx::query_scalar!(
        "select checkpoint_line from ops.ingested_files
         where file_id = $1 and status = 'processing' for update nowait",
        file_id,
    )
    .fetch_optional(conn)
    .await;
    match locked {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {
            Ok(None)
        }
        other => Ok(other?),
    }
}

/// SQLSTATE of a `nowait` lock that another transaction holds.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// What one committed batch adds to its file's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProgress {
    /// The batch's last line: the new checkpoint.
    pub checkpoint_line: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub inserted: i64,
    pub updated: i64,
}

/// Moves a file's checkpoint and adds a batch's counts, inside the caller's transaction.
pub async fn advance_checkpoint(
    conn: &mut PgConnection,
    file_id: Uuid,
    progress: BatchProgress,
) -> Result<(), Error> {
    sqlx::query!(
        "update ops.ingested_files set checkpoint_line = $2,
             rows_total = rows_total + $3, rows_accepted = rows_accepted + $4,
             rows_rejected = rows_rejected + $5, rows_inserted = rows_inserted + $6,
             rows_updated = rows_updated + $7
         where file_id = $1",
        file_id,
        progress.checkpoint_line,
        progress.accepted + progress.rejected,
        progress.accepted,
        progress.rejected,
        progress.inserted,
        progress.updated,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the churn outcomes a file's rows carry (`serving.outcomes`, source `ingested`) inside the
/// caller's transaction, so a file's outcomes commit or vanish with its customers. Each is
/// `(business customer id, churned)`; the caller is the file's name (cut to the column's 100
/// characters) and the observation time is when the file's transaction began (`now()`): the same for
/// every batch of a file, as the file is one transaction. Rows keep the given order, so of two
/// observations of one customer in one file the later row wins (ties go by `outcome_id`).
pub async fn insert_ingested_outcomes(
    conn: &mut PgConnection,
    file_name: &str,
    outcomes: &[(&str, bool)],
) -> Result<u64, Error> {
    if outcomes.is_empty() {
        return Ok(0);
    }
    let caller: String = file_name.chars().take(100).collect();
    let ids: Vec<&str> = outcomes.iter().map(|(id, _)| *id).collect();
    let churned: Vec<bool> = outcomes.iter().map(|(_, c)| *c).collect();
    Ok(sqlx::query!(
        "insert into serving.outcomes (customer_id, churned, observed_at, source, caller)
         select o.customer_id, o.churned, now(), 'ingested', $1
         from unnest($2::text[], $3::bool[]) with ordinality as o(customer_id, churned, n)
         order by o.n",
        caller,
        &ids as &[&str],
        &churned,
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Stores a file's rejected rows (source `ingest`) inside the caller's transaction, so they commit
/// with the batch they came from.
pub async fn insert_rejected(
    conn: &mut PgConnection,
    file_id: Uuid,
    rejected: Vec<Rejected>,
) -> Result<(), Error> {
    if rejected.is_empty() {
        return Ok(());
    }
    let mut lines = Vec::with_capacity(rejected.len());
    let mut raws = Vec::with_capacity(rejected.len());
    let mut errors = Vec::with_capacity(rejected.len());
    for r in rejected {
        lines.push(r.line_number);
        raws.push(r.raw_record);
        errors.push(r.errors);
    }
    sqlx::query!(
        "insert into ops.rejected_records (source, file_id, line_number, raw_record, errors)
         select 'ingest', $1, line, raw, errors
         from unnest($2::bigint[], $3::text[], $4::jsonb[]) as r(line, raw, errors)",
        file_id,
        &lines,
        &raws,
        &errors,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Closes a `processing` file as processed (`reason` none) or failed, recording where its object went.
pub async fn finish_file(
    pool: &PgPool,
    file_id: Uuid,
    reason: Option<&str>,
    final_key: &str,
) -> Result<(), Error> {
    sqlx::query!(
        "update ops.ingested_files
         set status = case when $2::text is null then 'processed' else 'failed' end,
             reason = $2, final_key = $3, finished_at = now(), ingested_at = now()
         where file_id = $1 and status = 'processing'",
        file_id,
        reason,
        final_key,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// How many of a file's rejected rows failed one `field: rule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonCount {
    pub reason: String,
    pub rows: i64,
}

/// Rejected rows of a file per reason (`field: rule`), most frequent first; a row with two errors
/// counts under both.
pub async fn rejected_by_reason(pool: &PgPool, file_id: Uuid) -> Result<Vec<ReasonCount>, Error> {
    Ok(sqlx::query_as!(
        ReasonCount,
        r#"select (e ->> 'field') || ': ' || (e ->> 'rule') as "reason!", count(*) as "rows!"
           from ops.rejected_records r cross join lateral jsonb_array_elements(r.errors) e
           where r.file_id = $1
           group by 1 order by 2 desc, 1"#,
        file_id,
    )
    .fetch_all(pool)
    .await?)
}

/// One rejected row of a file as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRecord {
    pub line_number: i64,
    pub raw_record: String,
    /// The row's errors, a JSON array of field errors.
    pub errors: Value,
}

/// A file's rejected rows in line order, streamed (a quarantine may be larger than memory).
pub fn rejected_records(
    pool: &PgPool,
    file_id: Uuid,
) -> BoxStream<'_, Result<RejectedRecord, Error>> {
    sqlx::query_as!(
        RejectedRecord,
        "select line_number, raw_record, errors from ops.rejected_records
         where file_id = $1 order by line_number",
        file_id,
    )
    .fetch(pool)
    .map(|row| row.map_err(Error::from))
    .boxed()
}

/// A file batch scoring wrote, once per file's bytes and model version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoredFile {
    pub sha256: String,
    pub model_name: String,
    pub model_version: i32,
    pub object_key: String,
    pub output_key: String,
    pub rows_total: i64,
    pub rows_scored: i64,
    pub rows_rejected: i64,
}

/// The scoring of these bytes by this model version, if it happened.
pub async fn scored_file(
    pool: &PgPool,
    sha256: &str,
    model_name: &str,
    model_version: i32,
) -> Result<Option<ScoredFile>, Error> {
    Ok(sqlx::query_as!(
        ScoredFile,
        "select sha256, model_name, model_version, object_key, output_key, rows_total, rows_scored,
                rows_rejected
         from ops.scored_files
         where sha256 = $1 and model_name = $2 and model_version = $3",
        sha256,
        model_name,
        model_version,
    )
    .fetch_optional(pool)
    .await?)
}

/// Records a scored file; a second record of the same bytes and version changes nothing.
pub async fn insert_scored_file(pool: &PgPool, file: &ScoredFile) -> Result<(), Error> {
    sqlx::query!(
        "insert into ops.scored_files (sha256, model_name, model_version, object_key, output_key,
             rows_total, rows_scored, rows_rejected)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict do nothing",
        file.sha256,
        file.model_name,
        file.model_version,
        file.object_key,
        file.output_key,
        file.rows_total,
        file.rows_scored,
        file.rows_rejected,
    )
    .execute(pool)
    .await?;
    Ok(())
}
