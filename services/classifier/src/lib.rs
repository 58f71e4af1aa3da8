//! The classifier service: serves the model registry's champion on `POST /predict` from memory and swaps
//! it atomically when the champion alias moves.

mod api;
mod feedback;
mod inference;
mod serving;

use std::sync::Arc;

use churn_config::{ClassifierConfig, ConfigError, Env, Secret};
use churn_registry::{ModelRef, Registry};
use churn_service::auth::PredictionKeys;
use churn_service::health::ReadyCache;
use churn_service::{Application, Infra};
use churn_serving::InferenceLog;

pub use api::router;
pub use serving::{ModelHolder, Refresh, RefreshError, Role, Served};

/// The variable naming this service's port.
pub const PORT_VAR: &str = ClassifierConfig::PORT_VAR;

/// The service's configuration: the shared settings plus the parsed model reference.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: ClassifierConfig,
    /// What to serve (CLASSIFIER_MODEL, default `registry:churn-classifier@champion`; a file path works too).
    pub model: ModelRef,
    /// What to shadow-score (CLASSIFIER_SHADOW_MODEL, default `registry:churn-classifier@challenger`;
    /// `off`: nothing).
    pub shadow: Option<ModelRef>,
}

/// Reads the service's configuration; an invalid variable is an error naming it.
pub fn config_from_env(env: &Env) -> Result<Config, ConfigError> {
    let settings = ClassifierConfig::from_env(env)?;
    let model = match &settings.model {
        Some(raw) => raw
            .parse::<ModelRef>()
            .map_err(|e| ConfigError::invalid("CLASSIFIER_MODEL", raw, e.to_string()))?,
        None => ModelRef::Registry {
            name: churn_models::classifier::MODEL_NAME.to_owned(),
            selector: churn_registry::Selector::Alias(churn_registry::Alias::CHAMPION.to_string()),
        },
    };
    let shadow = match settings.shadow_model.as_deref() {
        Some("off") => None,
        Some(raw) => Some(raw.parse::<ModelRef>().map_err(|e| {
            ConfigError::invalid(
                "CLASSIFIER_SHADOW_MODEL",
                raw,
                format!("{e}; or `off` to turn shadow scoring off"),
            )
        })?),
        None => Some(ModelRef::Registry {
            name: churn_models::classifier::MODEL_NAME.to_owned(),
            selector: churn_registry::Selector::Alias(
                churn_registry::Alias::CHALLENGER.to_string(),
            ),
        }),
    };
    Ok(Config {
        settings,
        model,
        shadow,
    })
}

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub infra: Infra,
    pub holder: Arc<ModelHolder>,
    /// The shadow model (the challenger), scored on request beside the champion.
    pub shadow: Option<Arc<ModelHolder>>,
    pub max_batch: usize,
    /// Most outcomes in one `POST /feedback` (FEEDBACK_MAX_BATCH).
    pub feedback_max_batch: usize,
    /// The keys the prediction routes take, each with its caller's name.
    pub keys: PredictionKeys,
    /// Where predictions are recorded (INFERENCE_LOG).
    pub log: InferenceLog,
    pub admin_token: Option<Secret>,
    pub ready: Arc<ReadyCache>,
}

/// Connects, loads the champion (if there is one yet), starts watching for changes, binds the listener.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    let settings = &config.settings;
    let infra = Infra::start(&settings.service.common).await?;
    let registry = Registry::new(infra.pool.clone(), infra.objects.clone());
    let holder = Arc::new(ModelHolder::new(
        registry.clone(),
        config.model.clone(),
        Role::Champion,
    ));
    match holder.refresh().await {
        Ok(Refresh::NoChampion) => tracing::warn!(
            "no champion model yet: /predict answers 503 until one is registered (churnctl train --register)"
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "the model could not be loaded at start; retrying in the background")
        }
    }
    let database_url = settings.service.common.database.url.expose().to_owned();
    holder.clone().watch(database_url.clone(), settings.poll);
    let shadow = config.shadow.clone().map(|reference| {
        let shadow = Arc::new(ModelHolder::new(registry, reference, Role::Shadow));
        // Its first load happens in the watcher: a missing challenger is normal and must not delay start.
        shadow.clone().watch(database_url, settings.poll);
        shadow
    });
    let (log, writer) = InferenceLog::start(infra.pool.clone(), &settings.inference_log);
    let state = AppState {
        infra,
        holder,
        shadow,
        max_batch: settings.max_batch,
        feedback_max_batch: settings.feedback_max_batch,
        keys: PredictionKeys::new(&settings.api_keys),
        log,
        admin_token: settings.service.common.admin_token.clone(),
        ready: Arc::new(ReadyCache::default()),
    };
    let limits = settings.service.common.limits;
    let application = Application::bind(&settings.service, api::router(state, limits)).await?;
    Ok(match writer {
        // Once the server has stopped, every answered request's rows are queued: write them, within
        // another shutdown grace.
        Some(writer) => {
            application.after_stop(move || Box::pin(writer.close(limits.shutdown_grace)))
        }
        None => application,
    })
}
