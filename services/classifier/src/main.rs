//! Starts the classifier service: reads its config from the environment and serves until SIGTERM.

use churn_config::Env;
use churn_service::telemetry;

fn main() -> anyhow::Result<()> {
    let config = classifier::config_from_env(&Env::Process)?;
    telemetry::init(config.settings.service.common.log_format);
    churn_service::server::run(config.settings.service.common.worker_threads, async move {
        classifier::build(config).await?.run_until_stopped().await
    })
}
