//! The quarantine file of a landed file: every rejected row with its line number and errors, written
//! from `ops.rejected_records` at the end, so rows rejected before a crash are in it too.

use std::sync::Arc;

use churn_core::FieldError;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::Error;

/// The quarantine file's header.
pub(crate) const HEADER: [&str; 4] = ["line", "errors", "errors_json", "record"];

/// `field = value: rule; …`, the errors as a person reads them.
pub(crate) fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One CSV line of the quarantine file.
pub(crate) fn line(out: &mut Vec<u8>, line: i64, errors: &[FieldError], raw: &str) {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    let json = serde_json::to_string(errors).unwrap_or_default();
    let (number, described) = (line.to_string(), describe(errors));
    let _ = writer.write_record([number.as_str(), described.as_str(), json.as_str(), raw]);
    let _ = writer.flush();
}

/// Streams a file's rejected rows, in line order, to `key` (a multipart upload for big quarantines).
pub(crate) async fn write(
    pool: &PgPool,
    store: Arc<dyn ObjectStore>,
    file_id: Uuid,
    key: &str,
) -> Result<(), Error> {
    let io = |e: std::io::Error| object_store::Error::Generic {
        store: "quarantine",
        source: Box::new(e),
    };
    let mut upload = BufWriter::new(store, Path::from(key));
    let mut chunk = Vec::with_capacity(1 << 16);
    line_header(&mut chunk);
    let mut rows = churn_store::ingestion::rejected_records(pool, file_id);
    while let Some(record) = rows.try_next().await? {
        let errors: Vec<FieldError> = serde_json::from_value(record.errors).unwrap_or_default();
        line(&mut chunk, record.line_number, &errors, &record.raw_record);
        if chunk.len() >= 1 << 16 {
            upload.write_all(&chunk).await.map_err(io)?;
            chunk.clear();
        }
    }
    upload.write_all(&chunk).await.map_err(io)?;
    upload.shutdown().await.map_err(io)?;
    Ok(())
}

fn line_header(out: &mut Vec<u8>) {
    out.extend_from_slice(HEADER.join(",").as_bytes());
    out.push(b'\n');
}
