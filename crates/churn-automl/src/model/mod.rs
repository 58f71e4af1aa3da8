//! The trained churn model: the artifact (preprocessing, estimator, calibration, threshold, importance,
//! training record), how it is trained, and the loaded form that predicts and explains.

mod artifact;
mod predictor;
mod training;

pub use artifact::{ChurnModel, TrainingRecord};
pub use predictor::{Contribution, LoadedModel};
pub use training::{Event, train, train_until};

/// Version of the artifact layout.
pub const SCHEMA_VERSION: u32 = 1;
/// The flavor the registry records for these artifacts.
pub const FLAVOR: &str = "churn-automl/v1";
