//! Where a trained model came from: the data lineage both model families register their versions with.

/// The training data and code behind a model, as its registry version and run record them. A model's
/// own record of its fit (the classifier's search and seed, the synthesizer's seed and fit time) travels
/// with the model, not here.
#[derive(Debug, Clone, Default)]
pub struct TrainingInfo {
    /// Where the rows came from: a file path, or a description such as `warehouse: churn.customers`.
    pub data_path: String,
    pub data_sha256: String,
    /// Rows the model was fitted on.
    pub train_rows: usize,
    /// Rows held out of the fit for testing; 0 when none were.
    pub holdout_rows: usize,
    /// The seed of the train/holdout split; 0 when there was no split.
    pub split_seed: u64,
    /// Recorded in the lineage, e.g. `churnctl 0.1.0`.
    pub code_version: String,
    /// The training data's profile as JSON (see [`crate::classifier::training_profile`]): the drift
    /// reference, stored with the version.
    pub profile: Option<Vec<u8>>,
}
