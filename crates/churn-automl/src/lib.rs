//! AutoML for churn: a preprocessing pipeline, three model families (linfa-logistic and smartcore
//! logistic regression, forust-ml gradient-boosted trees) and their blends, a time-budgeted search with
//! stratified k-fold cross-validation on ROC AUC (deterministic for a seed), Platt calibration and an
//! F1-optimal threshold on out-of-fold predictions, and permutation importance by customer field.

pub mod calibration;
pub mod estimators;
pub mod features;
pub mod importance;
pub mod model;
pub mod options;
pub mod search;
pub mod split;

pub use importance::Importance;
pub use model::{
    ChurnModel, Contribution, Event, FLAVOR, LoadedModel, SCHEMA_VERSION, train, train_until,
};
pub use options::{TrainOptions, ValidTrainOptions};

/// Everything that can go wrong training or loading a churn model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `index` counts rows from 0.
    #[error("training row {index} has no churn label; training and splits need labelled rows")]
    MissingLabel { index: usize },
    #[error("{name} is {value}: it {rule}")]
    InvalidParameter {
        name: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error(
        "{rows} training rows with {positives} churners is too few for {folds}-fold cross-validation"
    )]
    TooFewRows {
        rows: usize,
        positives: usize,
        folds: usize,
    },
    /// The caller's stop flag was raised; checked between folds, candidates and stages (a single fit
    /// runs to its end).
    #[error("training was stopped before it finished ({stage})")]
    Cancelled { stage: &'static str },
    #[error("model error: {0}")]
    Model(String),
    #[error("the churn model artifact is invalid: {0}")]
    Artifact(String),
    #[error("churn model: {0}")]
    Format(#[from] churn_core::artifact::ArtifactError),
}
