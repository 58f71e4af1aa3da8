//! Model monitoring for the churn platform: reference profiles, data and prediction drift by Evidently's
//! default rules, and calibration. It knows nothing of HTTP or SQL; jobs feed it rows and store what it
//! returns.
//!
//! - [`ReferenceProfile`] summarises a training set exactly (sorted numeric values with their counts,
//!   category counts) so drift can be computed later without the rows; it is a versioned JSON artifact
//!   stored beside each model version, optionally holding the reference churn probabilities too.
//! - [`data_drift`] and [`prediction_drift`] reproduce Evidently 0.7.23's `DataDriftPreset` decisions:
//!   the column type, the statistical test, its score and threshold and the drift verdict, plus PSI for
//!   every column and the dataset-drift verdict. See [`drift`] for the rules and the one known difference.
//! - [`cohort_figures`] computes ROC AUC, PR AUC, log loss, Brier and calibration per day and week
//!   cohort of predictions and per slice, with the label coverage.
//! - [`calibration()`] bins probabilities as scikit-learn's `calibration_curve(strategy="uniform")` does and
//!   adds the expected calibration error. Classification metrics are `churn_core::metrics::evaluate`.

pub mod calibration;
pub mod cohort;
pub mod drift;
pub mod ks;
pub mod profile;
pub mod stattest;

pub use calibration::{
    Calibration, CalibrationBin, CalibrationOptions, ValidCalibrationOptions, calibration,
};
pub use cohort::{CohortFigures, CohortKind, ScoredColumns, SliceColumn, cohort_figures};
pub use drift::{
    ColumnDrift, ColumnType, DatasetDrift, DriftOptions, StatTest, ValidDriftOptions, column_drift,
    data_drift, dataset_drift, default_stattest, infer_column_type, prediction_drift,
};
pub use profile::{
    CategoricalSummary, ColumnProfile, ColumnSummary, DRIFT_FIELDS, NumericSummary,
    PREDICTION_COLUMN, PROFILE_SCHEMA_VERSION, ReferenceProfile,
};

/// Everything that can go wrong profiling data, comparing it or binning probabilities.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("the reference data is empty: a profile needs at least one row")]
    EmptyReference,
    #[error("the current data is empty: drift needs at least one current row")]
    EmptyCurrent,
    #[error("no examples: calibration needs at least one label and probability")]
    EmptyCalibration,
    #[error("{parameter} is {value}; it must be {allowed}")]
    InvalidParameter {
        parameter: &'static str,
        value: f64,
        allowed: &'static str,
    },
    #[error("{column}: the value at index {index} is {value:?}; {rule}")]
    InvalidValue {
        column: String,
        index: usize,
        value: String,
        rule: &'static str,
    },
    #[error("{labels} labels but {probabilities} probabilities; they must pair up one to one")]
    LengthMismatch { labels: usize, probabilities: usize },
    #[error("the reference profile has no column {0}")]
    MissingColumn(String),
    #[error(
        "column {column} is {reference} in the reference but {current} in the current data; both sides must hold the same kind of values"
    )]
    KindMismatch {
        column: String,
        reference: &'static str,
        current: &'static str,
    },
    #[error(
        "the reference profile has no churn probabilities; build it with ReferenceProfile::with_prediction to monitor prediction drift"
    )]
    NoPredictionReference,
    #[error("stattest {stattest} does not apply to column {column}, which is {column_type}")]
    StatTestNotApplicable {
        column: String,
        stattest: &'static str,
        column_type: &'static str,
    },
    #[error("cohort metrics: {0}")]
    Cohort(String),
    #[error("the reference profile is invalid: {0}")]
    InvalidProfile(String),
    #[error("reference profile: {0}")]
    Artifact(#[from] churn_core::artifact::ArtifactError),
}
