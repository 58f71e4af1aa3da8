//! Event-driven ingestion of customer files from the object store, and batch scoring back to it.
//!
//! A CSV (plain or gzip; the dataset's headers, snake_case or the original API's names) dropped under
//! `landing/` is streamed, never held whole: each row is checked by the domain validation, valid rows are
//! written in batches (a known business `CustomerID` updates its customer, any other row is a new
//! customer with `source = ingested`), invalid rows go with their line number and every error to
//! `quarantine/<file>.errors.csv` and `ops.rejected_records`, and the file moves to `processed/` or to
//! `failed/` beside a reason file. `ops.ingested_files` holds the summary. Every file is read within
//! [`ReadLimits`] (line and record length, gzip inflation, columns): a file that breaks one fails with
//! the limit named, having cost no more memory than the limit.
//!
//! # Exactly once
//! Delivery is at least once (a webhook retried, a poll racing an event, a crash mid-file), so the effect
//! is made exactly once: a file is keyed by the SHA-256 of its bytes and written all or nothing, in one
//! transaction that first locks the file's row (each batch a savepoint with the file's checkpoint). A
//! redelivery of a finished file, the same bytes under another name, or a second worker finds the key or
//! the lock and changes nothing; a file that breaks part way, or a run killed mid-file, leaves no rows,
//! so its fixed copy or the next attempt writes each row once.
//!
//! A file under `score/` is scored by the serving champion and written to `scored/<name>` with the
//! probability, label, threshold and model version appended, once per file and model version.

pub mod event;
mod ingest;
mod limits;
mod quarantine;
mod read;
pub mod score;
mod state;
mod workers;

pub use ingest::{IngestOptions, Ingestor, Outcome, Summary};
pub use limits::{LimitExceeded, RATIO_CHECK_AFTER, ReadLimits};
pub use score::{ScoreOutcome, ScoreSummary, Scorer};
pub use workers::WorkerPool;

/// Where landed files wait, and where they go.
pub const LANDING: &str = "landing/";
pub const PROCESSED: &str = "processed/";
pub const FAILED: &str = "failed/";
pub const QUARANTINE: &str = "quarantine/";
pub const SCORE: &str = "score/";
pub const SCORED: &str = "scored/";

/// Everything that can stop an ingestion or scoring attempt. A file that cannot be ingested (empty,
/// binary, wrong header) is not an error: it is an [`Outcome::Failed`] with its reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "object {key} is not in the store (nothing landed there, and no file of that name was ingested)"
    )]
    NotFound { key: String },
    #[error("object key {key:?}: {rule}")]
    InvalidKey { key: String, rule: &'static str },
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] churn_store::Error),
    #[error("reading {key} stopped at line {line}: {reason}")]
    Read {
        key: String,
        line: u64,
        reason: String,
    },
    #[error(
        "{key} is being ingested by another worker (checkpoint at line {checkpoint}); this attempt stopped without writing"
    )]
    Busy { key: String, checkpoint: i64 },
    #[error("event body: {0}")]
    Event(String),
    #[error("classifier: {0}")]
    Classifier(#[from] churn_api::ClientError),
    #[error("the parsing thread stopped: {0}")]
    Thread(String),
}

impl Error {
    /// Whether trying again later may succeed (the store or database was unreachable, another worker
    /// held the file).
    pub fn retryable(&self) -> bool {
        !matches!(self, Error::InvalidKey { .. } | Error::Event(_))
    }
}

/// The file name under a prefix: `landing/a/b.csv` → `a/b.csv`.
pub(crate) fn name_under<'a>(key: &'a str, prefix: &str) -> Result<&'a str, Error> {
    match key.strip_prefix(prefix) {
        Some(name) if !name.is_empty() && !name.ends_with('/') => Ok(name),
        _ => Err(Error::InvalidKey {
            key: key.to_owned(),
            rule: "must name a file under the expected prefix (landing/… or score/…)",
        }),
    }
}
