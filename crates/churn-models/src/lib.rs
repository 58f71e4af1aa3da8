//! The platform's models in the registry: their names and flavors, and how each is registered and
//! loaded. It joins the registry (which knows nothing of model formats) with the model crates (which
//! know nothing of storage).

pub mod classifier;
pub mod data;
pub mod synthesizer;
pub mod train;
mod training_info;

pub use train::{
    Holdout, TrainEvent, TrainOutcome, TrainRequest, TrainingData, train_and_register,
    train_and_register_until, train_model,
};
pub use training_info::TrainingInfo;

use churn_registry::{ModelRef, ModelVersion, Registry};

/// Reads an artifact by reference (registry versions are checksum-verified), refuses a registry version
/// of another flavor, and parses it with `parse` off the async threads.
pub(crate) async fn load_artifact<T: Send + 'static>(
    registry: &Registry,
    reference: &ModelRef,
    flavor: &'static str,
    parse: impl FnOnce(&[u8]) -> Result<T, Error> + Send + 'static,
) -> Result<(T, Option<ModelVersion>), Error> {
    let (bytes, version) = registry.load(reference).await?;
    if let Some(v) = &version
        && v.flavor != flavor
    {
        return Err(Error::Flavor {
            reference: reference.to_string(),
            found: v.flavor.clone(),
            expected: flavor,
        });
    }
    let parsed = tokio::task::spawn_blocking(move || parse(&bytes))
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
    Ok((parsed, version))
}

/// Everything that can go wrong registering or loading a platform model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] churn_registry::Error),
    #[error(transparent)]
    Synth(#[from] churn_synth::Error),
    #[error(transparent)]
    Automl(#[from] churn_automl::Error),
    #[error(transparent)]
    Data(#[from] churn_core::Error),
    #[error(transparent)]
    Store(#[from] churn_store::Error),
    #[error("profiling the training data: {0}")]
    Monitor(#[from] churn_monitor::Error),
    #[error("the artifact of {reference} has flavor {found:?}, expected {expected:?}")]
    Flavor {
        reference: String,
        found: String,
        expected: &'static str,
    },
    #[error(
        "champion/challenger needs held-out rows to judge on: give a holdout share or a test file"
    )]
    NoHoldout,
    #[error("background task failed: {0}")]
    Task(String),
    /// The caller cancelled the training before anything was registered.
    #[error("training was cancelled before anything was registered")]
    Cancelled,
}
