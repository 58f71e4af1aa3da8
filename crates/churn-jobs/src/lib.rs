//! The scheduler's jobs as library code. A [`Runner`] gives every job Airflow's guarantees: each run is a
//! row of `ops.job_runs`; a job runs at most once at a time across scheduler replicas (a PostgreSQL
//! advisory lock per job); missed ticks are not replayed; retries back off exponentially with jitter; a
//! run left `running` by a crashed scheduler is closed as abandoned; shutdown lets the current batch
//! finish and closes the run. Each job is a module with checked parameters and its own error type, and a
//! `run` a test can call without cron or HTTP; the service only wires jobs to cron, events and routes.

pub mod cohorts;
pub mod dbt;
pub mod drift;
pub mod generate;
pub mod ingest;
mod job;
pub mod metrics;
pub mod params;
pub mod retrain;
pub mod runner;
mod spec;

pub use churn_store::ops::{JobRun, RunStatus, Trigger};
pub use params::InvalidParameter;
pub use runner::{Job, JobError, JobSpec, Outcome, RunContext, Runner, RunnerError, Schedule};
