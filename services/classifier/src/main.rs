//! Starts the classifier service: reads its config from the environment and serves until SIGTERM.

use churn_service::{Env, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = classifier::config_from_env(&Env::Process)?;
    telemetry::init(config.service.common.log_format);
    classifier::build(config).await?.run_until_stopped().await
}
