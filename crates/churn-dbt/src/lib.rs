//! Runs the platform's dbt project (`dbt/` at the repository root) as a subprocess and records what it
//! did: `dbt source freshness`, `dbt build` and `dbt docs generate`, with the connection derived from the
//! services' database URL, a timeout, captured logs and cancellation (SIGTERM to dbt's process group, a
//! grace period, then SIGKILL). Their artifacts (`run_results.json` v6, `sources.json` v3) are parsed and
//! written to `ops.dbt_invocations`, `ops.dbt_node_results` and `ops.dbt_source_freshness` in one
//! transaction; the outcome names every failed model, test, snapshot and stale source.
//!
//! ```no_run
//! # async fn example(pool: sqlx::PgPool, job_run_id: uuid::Uuid) -> Result<(), churn_dbt::Error> {
//! use churn_dbt::{Dbt, DbtParams};
//! let params = DbtParams::new("dbt").target_dir("/var/lib/churn/dbt-target").check()?;
//! let dbt = Dbt::new(params, "postgres://churn:secret@db:5432/churn")?;
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let outcome = dbt.run(&pool, Some(job_run_id), &cancel).await?;
//! if let Some(error) = outcome.error_message() {
//!     eprintln!("{error}"); // names each failed node
//! }
//! # Ok(()) }
//! ```
//!
//! Nothing here knows HTTP: the scheduler's dbt job calls [`Dbt::run`] and serves
//! [`ValidDbtParams::docs_dir`].

mod artifacts;
mod connection;
mod outcome;
mod params;
mod process;
mod record;
mod results;
mod runner;
mod status;

pub use connection::ConnectionEnv;
pub use outcome::{DbtOutcome, Failure};
pub use params::{DbtParams, ValidDbtParams};
pub use record::record;
pub use results::{
    DbtCommand, FreshnessResult, FreshnessStatus, Invocation, InvocationStatus, NodeResult,
    NodeStatus, ResourceType,
};
pub use runner::{BuildOptions, Dbt};

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong running dbt and recording its results.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid dbt parameter {name} = {value}: {rule}")]
    InvalidParam {
        name: &'static str,
        value: String,
        rule: String,
    },
    #[error("invalid database URL for dbt: {reason}")]
    InvalidDatabaseUrl { reason: String },
    #[error(
        "cannot start {executable} (set the dbt executable, e.g. CHURN_DBT or a venv's bin/dbt): {source}"
    )]
    Spawn {
        executable: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "dbt {command} failed (exit code {exit_code:?}) without writing its results; last output:\n{tail}"
    )]
    Failed {
        command: DbtCommand,
        exit_code: Option<i32>,
        tail: String,
    },
    #[error(
        "dbt {command} did not finish within {timeout:?} and was stopped; last output:\n{tail}"
    )]
    TimedOut {
        command: DbtCommand,
        timeout: Duration,
        tail: String,
    },
    #[error("dbt {command} was cancelled and stopped; last output:\n{tail}")]
    Cancelled { command: DbtCommand, tail: String },
    #[error("cannot read dbt's {path}: {reason}")]
    Artifact { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot record dbt results: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot record dbt results: {0}")]
    Store(churn_store::Error),
}

/// The store's recording functions fail in the database: those errors stay [`Error::Database`], which
/// callers treat as worth retrying.
impl From<churn_store::Error> for Error {
    fn from(e: churn_store::Error) -> Self {
        match e {
            churn_store::Error::Database(e) | churn_store::Error::Connect(e) => Error::Database(e),
            other => Error::Store(other),
        }
    }
}
