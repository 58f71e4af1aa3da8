//! A landed file's row in `ops.ingested_files`: claimed by its content hash, advanced one committed
//! batch at a time, closed as processed or failed.

use std::collections::HashMap;

use churn_core::Customer;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use crate::Error;
use crate::read::Batch;

/// The stored state of one file's bytes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct FileState {
    pub file_id: Uuid,
    pub object_key: String,
    pub sha256: String,
    pub status: String,
    pub checkpoint_line: i64,
    pub rows_total: i64,
    pub rows_accepted: i64,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_rejected: i64,
    pub reason: Option<String>,
    pub final_key: Option<String>,
}

const COLUMNS: &str = "file_id, object_key, sha256, status, checkpoint_line, rows_total, \
    rows_accepted, rows_inserted, rows_updated, rows_rejected, reason, final_key";

/// The row for these bytes: an existing one whatever its status, else a new `processing` one.
pub(crate) async fn claim(pool: &PgPool, key: &str, sha256: &str) -> Result<FileState, Error> {
    sqlx::query(
        "insert into ops.ingested_files
             (file_id, object_key, sha256, rows_total, rows_accepted, rows_rejected, status)
         values ($1, $2, $3, 0, 0, 0, 'processing')
         on conflict (sha256) do nothing",
    )
    .bind(Uuid::new_v4())
    .bind(key)
    .bind(sha256)
    .execute(pool)
    .await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from ops.ingested_files where sha256 = $1"
    )))
    .bind(sha256)
    .fetch_one(pool)
    .await?)
}

/// The latest file ingested under `key`, for an event about an object that has moved on already.
pub(crate) async fn by_key(pool: &PgPool, key: &str) -> Result<Option<FileState>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from ops.ingested_files where object_key = $1
         order by started_at desc limit 1"
    )))
    .bind(key)
    .fetch_optional(pool)
    .await?)
}

pub(crate) async fn by_id(pool: &PgPool, file_id: Uuid) -> Result<FileState, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from ops.ingested_files where file_id = $1"
    )))
    .bind(file_id)
    .fetch_one(pool)
    .await?)
}

/// Writes one batch and moves the checkpoint to its last line, all in one transaction that first checks
/// the checkpoint is still `expected` (locking the row, so a second worker waits and then stops).
/// Returns the new checkpoint.
pub(crate) async fn commit_batch(
    conn: &mut sqlx::PgConnection,
    file: &FileState,
    expected: i64,
    batch: &Batch,
    ids: &mut ulid::Generator,
) -> Result<i64, Error> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let current: Option<i64> = sqlx::query_scalar(
        "select checkpoint_line from ops.ingested_files
         where file_id = $1 and status = 'processing' for update",
    )
    .bind(file.file_id)
    .fetch_optional(&mut *tx)
    .await?;
    if current != Some(expected) {
        return Err(Error::Busy {
            key: file.object_key.clone(),
            checkpoint: current.unwrap_or(expected),
        });
    }

    // One statement cannot change a customer twice: of rows sharing a business id, the last one
    // (the latest state in the file) is written, the earlier ones count as updates it superseded.
    let mut last_of: HashMap<&str, usize> = HashMap::new();
    for (i, row) in batch.rows.iter().enumerate() {
        if let Some(id) = row.external_id.as_deref() {
            last_of.insert(id, i);
        }
    }
    let writes: Vec<(Uuid, &Customer, Option<&str>)> = batch
        .rows
        .iter()
        .enumerate()
        .filter(|(i, row)| {
            row.external_id
                .as_deref()
                .is_none_or(|id| last_of.get(id) == Some(i))
        })
        .map(|(_, row)| {
            (
                churn_store::warehouse::next_customer_id(ids),
                &row.customer,
                row.external_id.as_deref(),
            )
        })
        .collect();
    let written = churn_store::warehouse::upsert_ingested(&mut tx, &writes).await?;

    if !batch.rejected.is_empty() {
        let lines: Vec<i64> = batch.rejected.iter().map(|r| r.line as i64).collect();
        let raws: Vec<&str> = batch.rejected.iter().map(|r| r.raw.as_str()).collect();
        let errors: Vec<Json<Value>> = batch
            .rejected
            .iter()
            .map(|r| Json(serde_json::to_value(&r.errors).unwrap_or(Value::Null)))
            .collect();
        sqlx::query(
            "insert into ops.rejected_records (source, file_id, line_number, raw_record, errors)
             select 'ingest', $1, line, raw, errors
             from unnest($2::bigint[], $3::text[], $4::jsonb[]) as r(line, raw, errors)",
        )
        .bind(file.file_id)
        .bind(&lines)
        .bind(&raws)
        .bind(&errors)
        .execute(&mut *tx)
        .await?;
    }

    let accepted = batch.rows.len() as i64;
    let rejected = batch.rejected.len() as i64;
    let inserted = written.inserted as i64;
    let checkpoint = batch.last_line as i64;
    sqlx::query(
        "update ops.ingested_files set checkpoint_line = $2,
             rows_total = rows_total + $3, rows_accepted = rows_accepted + $4,
             rows_rejected = rows_rejected + $5, rows_inserted = rows_inserted + $6,
             rows_updated = rows_updated + $7
         where file_id = $1",
    )
    .bind(file.file_id)
    .bind(checkpoint)
    .bind(accepted + rejected)
    .bind(accepted)
    .bind(rejected)
    .bind(inserted)
    .bind(accepted - inserted)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(checkpoint)
}

/// Closes a file as processed (`reason` none) or failed, recording where its object went.
pub(crate) async fn finish(
    pool: &PgPool,
    file_id: Uuid,
    reason: Option<&str>,
    final_key: &str,
) -> Result<(), Error> {
    sqlx::query(
        "update ops.ingested_files
         set status = case when $2::text is null then 'processed' else 'failed' end,
             reason = $2, final_key = $3, finished_at = now(), ingested_at = now()
         where file_id = $1 and status = 'processing'",
    )
    .bind(file_id)
    .bind(reason)
    .bind(final_key)
    .execute(pool)
    .await?;
    Ok(())
}

/// Rejected rows per reason (`field: rule`); a row with two errors counts under both.
pub(crate) async fn rejected_by_reason(
    pool: &PgPool,
    file_id: Uuid,
) -> Result<Vec<(String, i64)>, Error> {
    Ok(sqlx::query_as(
        "select (e ->> 'field') || ': ' || (e ->> 'rule') as reason, count(*)
         from ops.rejected_records r cross join lateral jsonb_array_elements(r.errors) e
         where r.file_id = $1
         group by 1 order by 2 desc, 1",
    )
    .bind(file_id)
    .fetch_all(pool)
    .await?)
}
