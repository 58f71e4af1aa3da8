//! The classifier service: serves the model registry's champion on `POST /predict` from memory and swaps
//! it atomically when the champion alias moves.

mod api;
mod serving;

use std::sync::Arc;
use std::time::Duration;

use churn_registry::{ModelRef, Registry};
use churn_service::config::CLASSIFIER_PORT;
use churn_service::{Application, ConfigError, Env, Infra, ServiceConfig};

pub use api::router;
pub use serving::{ModelHolder, Refresh, Served};

/// The variable naming this service's port.
pub const PORT_VAR: &str = "CLASSIFIER_PORT";

/// The service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub service: ServiceConfig,
    /// What to serve (CLASSIFIER_MODEL, default `registry:churn-classifier@champion`; a file path works too).
    pub model: ModelRef,
    /// Largest number of customers in one `POST /predict/batch` (PREDICT_MAX_BATCH, default 1000).
    pub max_batch: usize,
    /// When set, `/predict` routes need this key in `X-API-Key` (PREDICT_API_KEY).
    pub api_key: Option<String>,
    /// How often the champion is polled in case a NOTIFY was missed (MODEL_POLL_SECS, default 5).
    pub poll: Duration,
}

/// Reads the service's configuration; an invalid variable is an error naming it.
pub fn config_from_env(env: &Env) -> Result<Config, ConfigError> {
    let invalid = |name: &str, value: String, reason: &str| ConfigError::Invalid {
        name: name.to_owned(),
        value,
        reason: reason.to_owned(),
    };
    let model = match env.get("CLASSIFIER_MODEL") {
        Some(raw) => raw
            .parse::<ModelRef>()
            .map_err(|e| invalid("CLASSIFIER_MODEL", raw.clone(), &e.to_string()))?,
        None => ModelRef::Registry {
            name: churn_models::classifier::MODEL_NAME.to_owned(),
            selector: churn_registry::Selector::Alias(
                churn_models::classifier::CHAMPION.to_owned(),
            ),
        },
    };
    let max_batch = env.parse_or("PREDICT_MAX_BATCH", 1000usize)?;
    if max_batch == 0 {
        return Err(invalid(
            "PREDICT_MAX_BATCH",
            "0".into(),
            "must be at least 1",
        ));
    }
    let poll = env.parse_or("MODEL_POLL_SECS", 5u64)?;
    if poll == 0 {
        return Err(invalid("MODEL_POLL_SECS", "0".into(), "must be at least 1"));
    }
    let api_key = env.get("PREDICT_API_KEY");
    if api_key.as_ref().is_some_and(|k| k.trim().len() < 16) {
        return Err(invalid(
            "PREDICT_API_KEY",
            "<hidden>".into(),
            "must be at least 16 characters",
        ));
    }
    Ok(Config {
        service: ServiceConfig::from_env(env, PORT_VAR, CLASSIFIER_PORT)?,
        model,
        max_batch,
        api_key,
        poll: Duration::from_secs(poll),
    })
}

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub infra: Infra,
    pub holder: Arc<ModelHolder>,
    pub max_batch: usize,
    pub api_key: Option<Arc<str>>,
    pub admin_token: Option<Arc<str>>,
}

/// Connects, loads the champion (if there is one yet), starts watching for changes, binds the listener.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    let infra = Infra::start(&config.service.common).await?;
    let registry = Registry::new(infra.pool.clone(), infra.objects.clone());
    let holder = Arc::new(ModelHolder::new(registry, config.model.clone()));
    match holder.refresh().await {
        Ok(Refresh::NoChampion) => tracing::warn!(
            "no champion model yet: /predict answers 503 until one is registered (churnctl train --register)"
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "the model could not be loaded at start; retrying in the background")
        }
    }
    holder.clone().watch(infra.pool.clone(), config.poll);
    let state = AppState {
        infra,
        holder,
        max_batch: config.max_batch,
        api_key: config.api_key.map(Arc::from),
        admin_token: config.service.common.admin_token.clone().map(Arc::from),
    };
    let limits = config.service.common.limits;
    Application::bind(&config.service, PORT_VAR, api::router(state, limits)).await
}
