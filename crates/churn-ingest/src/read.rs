//! Streaming a landed object: its SHA-256 in one pass, then its rows in batches from a parsing thread,
//! within the file's [`ReadLimits`].

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use churn_core::{Customer, CustomerReader, FieldError};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::Error;
use crate::limits::{Bounded, Consumed, LimitExceeded, ReadLimits, RecordMeter};

/// A valid row.
#[derive(Debug)]
pub(crate) struct ValidRow {
    pub external_id: Option<String>,
    pub customer: Customer,
    /// The row's fields as read, when the caller asked for them (scoring copies them to its output).
    pub raw: Option<csv::ByteRecord>,
}

/// An invalid row with every error it has.
#[derive(Debug)]
pub(crate) struct Rejected {
    pub line: u64,
    pub raw: String,
    pub errors: Vec<FieldError>,
}

/// Consecutive rows of a file: everything after the previous batch up to and including `last_line`.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub rows: Vec<ValidRow>,
    pub rejected: Vec<Rejected>,
    pub last_line: u64,
}

/// What the parsing thread sends.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// The header row, first, when raw rows were asked for.
    Header(csv::ByteRecord),
    Batch(Batch),
    /// The file cannot be ingested: nothing was sent before this, or its bytes broke mid-way.
    Unusable(String),
    /// Reading stopped for a reason that may pass (the store went away): try again later.
    Interrupted {
        line: u64,
        reason: String,
    },
    /// Every row was read; `data_rows` counts the rows after the header, including those skipped.
    Done {
        data_rows: u64,
    },
}

/// SHA-256 and size of an object, read as a stream.
pub(crate) async fn hash(store: &dyn ObjectStore, path: &Path) -> Result<(String, u64), Error> {
    let mut stream = store.get(path).await?.into_stream();
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// An object's bytes as the parser reads them: inflated when gzip, within the limits.
pub(crate) struct Source {
    reader: Box<dyn Read + Send>,
    /// Reset by the parser at each record, so the record bound counts one record's bytes.
    meter: RecordMeter,
    max_columns: usize,
}

/// A blocking reader of the object's bytes, decompressed when they start with gzip's magic number and
/// bounded by `limits`. Must be called inside the runtime (the bridge keeps its handle); read it on a
/// blocking thread.
pub(crate) async fn open(
    store: Arc<dyn ObjectStore>,
    path: &Path,
    limits: ReadLimits,
) -> Result<impl FnOnce() -> std::io::Result<Source> + use<>, Error> {
    let stream = store
        .get(path)
        .await?
        .into_stream()
        .map_err(std::io::Error::other);
    let bridge = SyncIoBridge::new(StreamReader::new(stream));
    Ok(move || {
        let mut buffered = BufReader::with_capacity(1 << 16, bridge);
        let gzip = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let meter = RecordMeter::default();
        // The bounds sit under the parser's buffers: a line or record is refused before it is held.
        let reader = if gzip {
            let (consumed, compressed) = Consumed::new(buffered);
            let inflated = flate2::bufread::MultiGzDecoder::new(consumed);
            Box::new(BufReader::with_capacity(
                1 << 16,
                Bounded::new(inflated, limits, Some(compressed), meter.clone()),
            )) as Box<dyn Read + Send>
        } else {
            Box::new(BufReader::with_capacity(
                1 << 16,
                Bounded::new(buffered, limits, None, meter.clone()),
            ))
        };
        Ok(Source {
            reader,
            meter,
            max_columns: limits.max_columns,
        })
    })
}

/// Whether an I/O error means the bytes are broken (bad gzip data) rather than the store unreachable.
fn is_corrupt(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::InvalidData
            | std::io::ErrorKind::InvalidInput
            | std::io::ErrorKind::UnexpectedEof
    )
}

/// What a CSV read error at `line` means for the file: a bound it broke, broken bytes, or a store that
/// went away.
fn read_error(line: u64, source: &csv::Error) -> Parsed {
    match source.kind() {
        csv::ErrorKind::Io(io) => match LimitExceeded::in_io(io) {
            Some(limit) => Parsed::Unusable(format!("stopped at line {line}: {limit}")),
            None if is_corrupt(io) => {
                Parsed::Unusable(format!("unreadable at line {line}: {source}"))
            }
            None => Parsed::Interrupted {
                line,
                reason: io.to_string(),
            },
        },
        _ => Parsed::Unusable(format!("unreadable at line {line}: {source}")),
    }
}

/// Why a file's header makes it unusable, in words for the reason file.
fn header_reason(error: churn_core::Error) -> Parsed {
    use churn_core::Error as E;
    match error {
        E::HeaderNotUtf8 { .. } => Parsed::Unusable(format!(
            "not a CSV text file (binary data or another encoding): {error}"
        )),
        E::Empty => Parsed::Unusable(error.to_string()),
        E::MissingColumns(_) | E::DuplicateColumn { .. } | E::TooManyColumns { .. } => {
            Parsed::Unusable(format!("wrong header: {error}"))
        }
        E::Csv { line, source } => read_error(line, &source),
        other => Parsed::Unusable(other.to_string()),
    }
}

/// The fields of a row as CSV text, for the quarantine.
fn raw_text(record: &csv::ByteRecord) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::with_capacity(record.as_slice().len() + 16));
    let _ = writer.write_byte_record(record);
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches(['\n', '\r'])
        .to_owned()
}

#[allow(clippy::while_let_on_iterator)]
/// Reads rows after line `skip_through` and sends them in batches of `batch_rows` (valid and rejected
/// together). Runs on a blocking thread; stops quietly when the receiver is gone.
pub(crate) fn parse(
    source: std::io::Result<Source>,
    skip_through: u64,
    batch_rows: usize,
    keep_raw: bool,
    tx: &mpsc::Sender<Parsed>,
) {
    let send = |message| tx.blocking_send(message).is_ok();
    let Source {
        reader,
        meter,
        max_columns,
    } = match source {
        Ok(source) => source,
        Err(e) if is_corrupt(&e) => {
            send(Parsed::Unusable(format!("not readable: {e}")));
            return;
        }
        Err(e) => {
            send(Parsed::Interrupted {
                line: 1,
                reason: e.to_string(),
            });
            return;
        }
    };
    let mut rows = match CustomerReader::with_max_columns(reader, max_columns) {
        Ok(rows) => rows,
        Err(e) => {
            send(header_reason(e));
            return;
        }
    };
    meter.record_ended();
    if keep_raw && !send(Parsed::Header(rows.header().clone())) {
        return;
    }
    let mut batch = Batch::default();
    let mut data_rows = 0u64;
    // `while let` rather than `for`: the loop body reads the reader's last record.
    while let Some(item) = rows.next() {
        meter.record_ended();
        data_rows += 1;
        let (line, outcome) = match item {
            Ok(row) => (row.line, Ok(row)),
            Err(churn_core::Error::InvalidRow { line, errors, .. }) => (line, Err(errors.0)),
            Err(churn_core::Error::FieldCount {
                line,
                expected,
                found,
            }) => (
                line,
                Err(vec![FieldError::new(
                    "row",
                    json!(found),
                    format!("must have {expected} fields, as the header has"),
                )]),
            ),
            Err(churn_core::Error::Csv { line, source }) => {
                send(read_error(line, &source));
                return;
            }
            Err(other) => {
                send(Parsed::Unusable(other.to_string()));
                return;
            }
        };
        if line <= skip_through {
            continue;
        }
        match outcome {
            Ok(row) => batch.rows.push(ValidRow {
                external_id: row.customer_id,
                customer: row.customer,
                raw: keep_raw.then(|| rows.record().clone()),
            }),
            Err(errors) => batch.rejected.push(Rejected {
                line,
                raw: raw_text(rows.record()),
                errors,
            }),
        }
        batch.last_line = line;
        if batch.rows.len() + batch.rejected.len() >= batch_rows
            && !send(Parsed::Batch(std::mem::take(&mut batch)))
        {
            return;
        }
    }
    if (!batch.rows.is_empty() || !batch.rejected.is_empty()) && !send(Parsed::Batch(batch)) {
        return;
    }
    send(Parsed::Done { data_rows });
}
