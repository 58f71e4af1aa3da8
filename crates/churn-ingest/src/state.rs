//! A landed file's batches: each one written with its rejected rows and its file's new checkpoint in one
//! savepoint of the file's transaction, after checking the checkpoint is where this worker left it. The
//! file's row itself (`ops.ingested_files`) is read and written through `churn_store::ingestion`.

use std::collections::HashMap;

use churn_core::{Customer, CustomerId};
use churn_store::ingestion::{self, BatchProgress, IngestedFile};
use churn_store::ops::Rejected;
use serde_json::Value;

use crate::Error;
use crate::read::Batch;

/// Writes one batch and moves the checkpoint to its last line, all in one savepoint of the caller's
/// transaction, after checking the checkpoint is still `expected` (locking the row until the file's
/// transaction ends, so a second worker stops at once). Returns the new checkpoint.
pub(crate) async fn commit_batch(
    conn: &mut sqlx::PgConnection,
    file: &IngestedFile,
    expected: i64,
    batch: &Batch,
    ids: &mut ulid::Generator,
) -> Result<i64, Error> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let current = ingestion::lock_checkpoint(&mut tx, file.file_id).await?;
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
    let writes: Vec<(CustomerId, &Customer, Option<&str>)> = batch
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
    // A labelled row of a known business id is an observed outcome: every one is kept, in file order,
    // for the metrics job to match with the predictions logged for that id.
    let outcomes: Vec<(&str, bool)> = batch
        .rows
        .iter()
        .filter_map(|row| {
            let id = row.external_id.as_deref()?;
            Some((id, row.customer.churn_label?.is_yes()))
        })
        .collect();
    let name = file
        .object_key
        .rsplit('/')
        .next()
        .unwrap_or(&file.object_key);
    ingestion::insert_ingested_outcomes(&mut tx, name, &outcomes).await?;

    let rejected = batch
        .rejected
        .iter()
        .map(|r| Rejected {
            line_number: r.line as i64,
            raw_record: r.raw.clone(),
            errors: serde_json::to_value(&r.errors).unwrap_or(Value::Null),
        })
        .collect();
    ingestion::insert_rejected(&mut tx, file.file_id, rejected).await?;

    let accepted = batch.rows.len() as i64;
    let inserted = written.inserted as i64;
    let progress = BatchProgress {
        checkpoint_line: batch.last_line as i64,
        accepted,
        rejected: batch.rejected.len() as i64,
        inserted,
        updated: accepted - inserted,
    };
    ingestion::advance_checkpoint(&mut tx, file.file_id, progress).await?;
    tx.commit().await?;
    Ok(progress.checkpoint_line)
}
