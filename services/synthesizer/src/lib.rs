//! The synthesizer service: serves synthetic Telco customers drawn from a Gaussian copula fitted on real
//! ones. At start it loads the registry's current `synthesizer` version, fitting and registering one
//! from the seed data when there is none.

mod api;

use std::path::PathBuf;
use std::sync::Arc;

use churn_models::synthesizer;
use churn_registry::Registry;
use churn_service::config::SYNTHESIZER_PORT;
use churn_service::{Application, ConfigError, Env, Infra, ServiceConfig};
use churn_synth::Sampler;

pub use api::router;

/// The variable naming this service's port.
pub const PORT_VAR: &str = "SYNTHESIZER_PORT";

/// The service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceConfig,
    /// Largest `n` one request may ask for (SYNTHESIZE_MAX_ROWS, default 1,000,000).
    pub max_rows: u64,
    /// The seed data used when the registry has no synthesizer yet (CHURN_SEED_DATA).
    pub seed_data: PathBuf,
}

/// Reads the service's configuration; an invalid variable is an error naming it.
pub fn config_from_env(env: &Env) -> Result<Config, ConfigError> {
    let max_rows = env.parse_or("SYNTHESIZE_MAX_ROWS", 1_000_000u64)?;
    if max_rows == 0 {
        return Err(ConfigError::Invalid {
            name: "SYNTHESIZE_MAX_ROWS".into(),
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(Config {
        service: ServiceConfig::from_env(env, PORT_VAR, SYNTHESIZER_PORT)?,
        max_rows,
        seed_data: env
            .get(churn_core::SEED_DATA_ENV)
            .map_or_else(churn_store::seed::seed_path, PathBuf::from),
    })
}

/// The loaded model and where it came from.
#[derive(Debug)]
pub struct Loaded {
    pub sampler: Sampler,
    pub version: i32,
}

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub infra: Infra,
    pub model: Arc<Loaded>,
    pub max_rows: u64,
}

/// Connects, loads (or bootstraps) the synthesizer and binds the listener.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    let infra = Infra::start(&config.service.common).await?;
    let registry = Registry::new(infra.pool.clone(), infra.objects.clone());
    let code_version = format!("synthesizer {}", env!("CARGO_PKG_VERSION"));
    let (sampler, version) =
        synthesizer::load_or_bootstrap(&registry, &config.seed_data, &code_version).await?;
    tracing::info!(version = version.version, "serving synthesizer");
    let state = AppState {
        infra,
        model: Arc::new(Loaded {
            sampler,
            version: version.version,
        }),
        max_rows: config.max_rows,
    };
    let limits = config.service.common.limits;
    Application::bind(&config.service, PORT_VAR, api::router(state, limits)).await
}
