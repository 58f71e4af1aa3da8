//! The dbt runner the scheduler's job calls: each dbt command on its own ([`Dbt::source_freshness`],
//! [`Dbt::build`], [`Dbt::docs_generate`]) or the whole scheduled run ([`Dbt::run`]): freshness, build,
//! results recorded in ops, docs.

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::artifacts::{self, RunResults, Sources};
use crate::connection::ConnectionEnv;
use crate::outcome::DbtOutcome;
use crate::params::ValidDbtParams;
use crate::process::{self, Finished};
use crate::results::{DbtCommand, Invocation};
use crate::{Error, record};

/// Options of one `dbt build`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// `--full-refresh`: rebuild incremental models from scratch.
    pub full_refresh: bool,
    /// `--select` arguments; empty builds everything.
    pub select: Vec<String>,
    /// `--exclude` arguments.
    pub exclude: Vec<String>,
}

/// Runs the dbt project against one database.
#[derive(Debug, Clone)]
pub struct Dbt {
    params: ValidDbtParams,
    connection: ConnectionEnv,
}

impl Dbt {
    /// A runner for the database at `database_url` (the services' `DATABASE_URL`).
    pub fn new(params: ValidDbtParams, database_url: &str) -> Result<Self, Error> {
        Ok(Self {
            params,
            connection: ConnectionEnv::from_url(database_url)?,
        })
    }

    pub fn params(&self) -> &ValidDbtParams {
        &self.params
    }

    pub fn connection(&self) -> &ConnectionEnv {
        &self.connection
    }

    /// `dbt source freshness`: its `sources.json`, whatever the sources' statuses.
    pub async fn source_freshness(&self, cancel: &CancellationToken) -> Result<Invocation, Error> {
        let command = DbtCommand::SourceFreshness;
        let finished = process::run(&self.params, &self.connection, command, &[], cancel).await?;
        let path = self.params.target_dir().join("sources.json");
        match artifacts::read::<Sources>(&path)? {
            Some(sources) => Ok(Invocation::from_sources(
                command,
                finished.exit_code,
                sources,
            )),
            None => Err(missing(command, finished)),
        }
    }

    /// `dbt build`: its `run_results.json`, whatever the nodes' statuses.
    pub async fn build(
        &self,
        options: &BuildOptions,
        cancel: &CancellationToken,
    ) -> Result<Invocation, Error> {
        let command = DbtCommand::Build;
        let mut extra = Vec::new();
        if options.full_refresh {
            extra.push("--full-refresh".to_owned());
        }
        for (flag, values) in [
            ("--select", &options.select),
            ("--exclude", &options.exclude),
        ] {
            if !values.is_empty() {
                extra.push(flag.to_owned());
                extra.extend(values.iter().cloned());
            }
        }
        let finished =
            process::run(&self.params, &self.connection, command, &extra, cancel).await?;
        let path = self.params.target_dir().join("run_results.json");
        match artifacts::read::<RunResults>(&path)? {
            Some(results) => {
                Invocation::from_run_results(command, finished.exit_code, results, &path)
            }
            None => Err(missing(command, finished)),
        }
    }

    /// `dbt docs generate --static`: the site in [`ValidDbtParams::docs_dir`].
    pub async fn docs_generate(&self, cancel: &CancellationToken) -> Result<(), Error> {
        let command = DbtCommand::DocsGenerate;
        let finished = process::run(&self.params, &self.connection, command, &[], cancel).await?;
        if finished.exit_code == Some(0) {
            Ok(())
        } else {
            Err(Error::Failed {
                command,
                exit_code: finished.exit_code,
                tail: finished.tail,
            })
        }
    }

    /// The scheduled run: `dbt source freshness`, then `dbt build` (stale sources do not stop the build:
    /// the marts are still worth refreshing, and the outcome reports both), then both results recorded
    /// in ops in one transaction under `job_run_id`, then `dbt docs generate` when the params ask for it.
    ///
    /// An `Err` means dbt could not run or did not finish (not installed, a project that does not parse,
    /// a timeout, cancellation); what finished before it is recorded. Failed models and tests are not
    /// errors: they are in the outcome, which names them.
    pub async fn run(
        &self,
        pool: &PgPool,
        job_run_id: Option<Uuid>,
        cancel: &CancellationToken,
    ) -> Result<DbtOutcome, Error> {
        let freshness = self.source_freshness(cancel).await?;
        let build = match self.build(&BuildOptions::default(), cancel).await {
            Ok(build) => build,
            Err(e) => {
                record(pool, job_run_id, &[&freshness]).await?;
                return Err(e);
            }
        };
        record(pool, job_run_id, &[&freshness, &build]).await?;
        let docs = if self.params.generate_docs() {
            Some(match self.docs_generate(cancel).await {
                Ok(()) => Ok(()),
                Err(e @ (Error::Cancelled { .. } | Error::TimedOut { .. })) => return Err(e),
                Err(e) => Err(e.to_string()),
            })
        } else {
            None
        };
        let outcome = DbtOutcome {
            freshness,
            build,
            docs,
        };
        match outcome.error_message() {
            None => tracing::info!(
                nodes = outcome.build.nodes.len(),
                rows = outcome.rows_affected(),
                elapsed_secs = outcome.build.elapsed_seconds,
                "dbt run succeeded"
            ),
            Some(error) => tracing::warn!(error = %error, "dbt run failed"),
        }
        Ok(outcome)
    }
}

/// dbt ended without the artifact it writes when it runs at all.
fn missing(command: DbtCommand, finished: Finished) -> Error {
    Error::Failed {
        command,
        exit_code: finished.exit_code,
        tail: finished.tail,
    }
}
