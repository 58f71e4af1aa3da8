//! The scheduler service over HTTP, started on port 0 against a real PostgreSQL and S3 server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod console;
mod dbt;
mod generate;
mod health;
mod ingest;
mod interrupted;
mod mlflow;
mod monitoring;
mod observability;
mod process;
mod stack;

use churn_service::testing::TestService;

/// Starts the service with `extra` environment variables.
pub async fn spawn_app(extra: &[(&str, &str)]) -> TestService {
    TestService::spawn(scheduler::PORT_VAR, extra, |env| async move {
        scheduler::build(scheduler::config_from_env(&env)?).await
    })
    .await
}
