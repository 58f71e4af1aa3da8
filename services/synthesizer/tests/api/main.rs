//! The synthesizer service over HTTP, started on port 0 against a real PostgreSQL and S3 server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod edges;
mod health;
mod synthesize;

use churn_service::testing::TestService;

/// Starts the service with `extra` environment variables.
pub async fn spawn_app(extra: &[(&str, &str)]) -> TestService {
    let seed = churn_testkit::seed_data_path();
    let mut env: Vec<(&str, &str)> = vec![("CHURN_SEED_DATA", seed.to_str().unwrap())];
    env.extend_from_slice(extra);
    TestService::spawn(synthesizer::PORT_VAR, &env, |env| async move {
        synthesizer::build(synthesizer::config_from_env(&env)?).await
    })
    .await
}
