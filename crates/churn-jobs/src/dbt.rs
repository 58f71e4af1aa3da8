//! The `dbt` job: `dbt source freshness` and `dbt build` of the star schema (and `dbt docs generate`), as
//! subprocesses with a timeout and cancellation, their results recorded in `ops` under the run. A failed
//! model, test, snapshot or stale source fails the run, naming them.

use churn_dbt::{Dbt, ValidDbtParams};
use futures::future::BoxFuture;
use serde_json::json;
use sqlx::PgPool;

use crate::runner::{Job, JobError, Outcome, RunContext};

/// The job's name.
pub const NAME: &str = "dbt";

/// The dbt job. When its parameters did not check out (dbt not installed, no project), every run fails
/// saying why, rather than the scheduler refusing to start.
#[derive(Debug, Clone)]
pub struct DbtJob {
    dbt: Result<Dbt, String>,
    pool: PgPool,
}

impl DbtJob {
    pub fn new(
        params: Result<ValidDbtParams, churn_dbt::Error>,
        database_url: &str,
        pool: PgPool,
    ) -> Self {
        let dbt = params
            .and_then(|p| Dbt::new(p, database_url))
            .map_err(|e| {
                format!("{e} (set DBT_EXECUTABLE to a dbt with the postgres adapter, DBT_PROJECT_DIR to the dbt/ folder)")
            });
        if let Err(e) = &dbt {
            tracing::warn!(error = %e, "the dbt job cannot run until this is fixed");
        }
        Self { dbt, pool }
    }

    /// Where `dbt docs generate` writes the site, when dbt is set up.
    pub fn docs_dir(&self) -> Option<&std::path::Path> {
        self.dbt.as_ref().ok().map(|d| d.params().docs_dir())
    }
}

impl Job for DbtJob {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, Result<Outcome, JobError>> {
        Box::pin(async move {
            let dbt = self.dbt.as_ref().map_err(|e| JobError::Fatal(e.clone()))?;
            let outcome = dbt
                .run(&self.pool, Some(ctx.run_id), &ctx.cancel)
                .await
                .map_err(|e| match e {
                    churn_dbt::Error::Cancelled { .. } => JobError::Interrupted(e.to_string()),
                    // dbt could not reach the database or did not finish in time: may pass.
                    churn_dbt::Error::Failed { .. }
                    | churn_dbt::Error::TimedOut { .. }
                    | churn_dbt::Error::Database(_) => JobError::Retryable(e.to_string()),
                    _ => JobError::Fatal(e.to_string()),
                })?;
            if let Some(error) = outcome.error_message() {
                // Failed tests and models are facts about the data, not transient: no retry.
                return Err(JobError::Fatal(error));
            }
            Ok(Outcome {
                rows: outcome.rows_affected(),
                details: json!({
                    "build_invocation_id": outcome.build.invocation_id,
                    "freshness_invocation_id": outcome.freshness.invocation_id,
                    "nodes": outcome.build.nodes.len(),
                    "elapsed_seconds": outcome.build.elapsed_seconds,
                    "docs": outcome.docs.as_ref().map(|d| d.is_ok()),
                }),
            })
        })
    }
}
