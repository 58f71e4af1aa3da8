//! The platform's models in the registry: their names and flavors, and how each is registered and
//! loaded. It joins the registry (which knows nothing of model formats) with the model crates (which
//! know nothing of storage).

pub mod synthesizer;

/// Everything that can go wrong registering or loading a platform model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] churn_registry::Error),
    #[error(transparent)]
    Synth(#[from] churn_synth::Error),
    #[error(transparent)]
    Data(#[from] churn_core::Error),
    #[error(transparent)]
    Store(#[from] churn_store::Error),
    #[error("the artifact of {reference} has flavor {found:?}, expected {expected:?}")]
    Flavor {
        reference: String,
        found: String,
        expected: &'static str,
    },
    #[error("background task failed: {0}")]
    Task(String),
}
