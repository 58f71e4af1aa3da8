//! The synthesizer service: serves synthetic Telco customers drawn from a Gaussian copula fitted on real
//! ones. At start it loads the registry's current `synthesizer` version, fitting and registering one
//! from the seed data when there is none.

mod api;

use std::sync::Arc;

use churn_config::{ConfigError, Env, SynthesizerConfig};
use churn_models::synthesizer;
use churn_registry::Registry;
use churn_service::health::ReadyCache;
use churn_service::{Application, Infra};
use churn_synth::Sampler;

pub use api::router;

/// The variable naming this service's port.
pub const PORT_VAR: &str = SynthesizerConfig::PORT_VAR;

/// Reads the service's configuration; an invalid variable is an error naming it.
pub fn config_from_env(env: &Env) -> Result<SynthesizerConfig, ConfigError> {
    SynthesizerConfig::from_env(env)
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
    /// Slots for streamed (large-`n`) answers (SYNTHESIZE_MAX_STREAMS).
    pub streams: Arc<tokio::sync::Semaphore>,
    /// A streamed answer's total deadline and per-chunk send timeout.
    pub stream_timeout: std::time::Duration,
    pub send_timeout: std::time::Duration,
    pub ready: Arc<ReadyCache>,
}

/// Connects, loads (or bootstraps) the synthesizer and binds the listener.
pub async fn build(config: SynthesizerConfig) -> anyhow::Result<Application> {
    let infra = Infra::start(&config.service.common).await?;
    let registry = Registry::new(infra.pool.clone(), infra.objects.clone());
    let code_version = format!("synthesizer {}", env!("CARGO_PKG_VERSION"));
    let (sampler, version) =
        synthesizer::load_or_bootstrap(&registry, &config.seed_data, &code_version).await?;
    tracing::info!(version = %version.version, "serving synthesizer");
    let state = AppState {
        infra,
        model: Arc::new(Loaded {
            sampler,
            version: version.version.get(),
        }),
        max_rows: config.max_rows,
        streams: Arc::new(tokio::sync::Semaphore::new(config.max_streams)),
        stream_timeout: config.stream_timeout,
        send_timeout: config.send_timeout,
        ready: Arc::new(ReadyCache::default()),
    };
    let limits = config.service.common.limits;
    Application::bind(&config.service, api::router(state, limits)).await
}
