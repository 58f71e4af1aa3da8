//! Starts the synthesizer service: reads its config from the environment and serves until SIGTERM.

use churn_config::Env;
use churn_service::telemetry;

fn main() -> anyhow::Result<()> {
    let config = synthesizer::config_from_env(&Env::Process)?;
    telemetry::init(config.service.common.log_format);
    churn_service::server::run(config.service.common.worker_threads, async move {
        synthesizer::build(config).await?.run_until_stopped().await
    })
}
