//! What a job is to the runner: the trait, what a run is told, and how it ends.

use std::sync::Arc;

use churn_store::ops::Trigger;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What a run is told: who it is, and when to stop.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub run_id: Uuid,
    pub trigger: Trigger,
    pub attempt: u32,
    /// Cancelled at shutdown, when the job's lock is lost, or when a continuous job is paused: a job
    /// finishes (or rolls back) its current batch and returns [`JobError::Interrupted`] (or its
    /// outcome, if its work was done anyway). A run still going when the shutdown grace ends is
    /// recorded interrupted by the runner.
    pub cancel: CancellationToken,
    /// Rows committed so far by this run, across attempts (see [`RunContext::committed`]).
    pub(crate) committed: Arc<std::sync::atomic::AtomicI64>,
}

impl RunContext {
    /// Counts `rows` the job has just committed. A job that commits as it goes (batch by batch) calls
    /// this, so a run that fails after committing some batches still records them, and a retried run's
    /// total includes what its failed attempts committed.
    pub fn committed(&self, rows: i64) {
        self.committed
            .fetch_add(rows, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What a successful run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub rows: i64,
    pub details: Value,
}

/// A failed attempt, as the runner sees it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// May pass on its own (a dependency down, a dropped connection): the attempt is retried.
    #[error("{0}")]
    Retryable(String),
    /// Will not pass by trying again (bad input, a broken invariant).
    #[error("{0}")]
    Fatal(String),
    /// The run was told to stop ([`RunContext::cancel`]) and stopped before its work was done: the run
    /// is recorded `interrupted`, never retried, and no failure alert counts it.
    #[error("stopped before it finished: {0}")]
    Interrupted(String),
}

impl JobError {
    pub fn retryable(&self) -> bool {
        matches!(self, JobError::Retryable(_))
    }
}

/// A job: one run at a time, told when to stop.
pub trait Job: Send + Sync + 'static {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, Result<Outcome, JobError>>;
}
