//! The `ingest` and `score` jobs: poll `landing/` and `score/` for files no bucket notification announced
//! (or whose notification was lost), through the same code path as `POST /events/s3` and `POST /ingest`.

use churn_ingest::{Ingestor, Outcome as FileOutcome, ScoreOutcome, Scorer};
use futures::future::BoxFuture;
use serde_json::json;

use crate::runner::{Job, JobError, Outcome, RunContext};

/// The jobs' names.
pub const NAME: &str = "ingest";
pub const SCORE_NAME: &str = "score";

/// Ingests every file waiting under `landing/`.
#[derive(Debug, Clone)]
pub struct IngestJob {
    ingestor: Ingestor,
}

impl IngestJob {
    pub fn new(ingestor: Ingestor) -> Self {
        Self { ingestor }
    }
}

impl Job for IngestJob {
    fn run(&self, _ctx: RunContext) -> BoxFuture<'_, Result<Outcome, JobError>> {
        Box::pin(async move {
            let results = self
                .ingestor
                .poll()
                .await
                .map_err(|e| JobError::Retryable(e.to_string()))?;
            // A file that could not be finished stays in landing/ for the next run; the run says so.
            outcome(results, |s| {
                (s.outcome == FileOutcome::Processed).then_some(s.rows_accepted)
            })
        })
    }
}

/// A polling run's outcome: the rows of the files `rows` counts and every file's summary; any file that
/// failed fails the run (retryable), naming each.
fn outcome<S: serde::Serialize>(
    results: Vec<(String, Result<S, churn_ingest::Error>)>,
    rows: impl Fn(&S) -> Option<i64>,
) -> Result<Outcome, JobError> {
    let mut total = 0i64;
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for (key, result) in results {
        match result {
            Ok(summary) => {
                total += rows(&summary).unwrap_or(0);
                files.push(json!(summary));
            }
            Err(e) => errors.push(format!("{key}: {e}")),
        }
    }
    if !errors.is_empty() {
        return Err(JobError::Retryable(errors.join("; ")));
    }
    Ok(Outcome {
        rows: total,
        details: json!({ "files": files }),
    })
}

/// Scores every file under `score/` the served model version has not scored.
#[derive(Debug, Clone)]
pub struct ScoreJob {
    scorer: Scorer,
}

impl ScoreJob {
    pub fn new(scorer: Scorer) -> Self {
        Self { scorer }
    }
}

impl Job for ScoreJob {
    fn run(&self, _ctx: RunContext) -> BoxFuture<'_, Result<Outcome, JobError>> {
        Box::pin(async move {
            let results = self
                .scorer
                .poll()
                .await
                .map_err(|e| JobError::Retryable(e.to_string()))?;
            outcome(results, |s| {
                (s.outcome == ScoreOutcome::Scored).then_some(s.rows_scored)
            })
        })
    }
}
