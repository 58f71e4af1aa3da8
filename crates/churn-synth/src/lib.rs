//! Synthetic Telco customers from a Gaussian copula fitted on real ones.
//!
//! [`SynthModel::fit`] learns one copula per (phone service, internet service) segment, so the
//! "No phone service" / "No internet service" rules hold by construction; location is a single key
//! (zip code) whose city, state, country and coordinates come from the training data, so every place
//! is real; total charges follow monthly × tenure within the ratios seen in training. [`Sampler`]
//! draws rows deterministically for a seed, in parallel; [`report::quality`] scores fidelity the way
//! SDMetrics' QualityReport does.

pub mod csv_out;
pub mod marginal;
pub mod model;
pub mod normal;
pub mod report;
pub mod sampler;

pub use csv_out::CsvFormatter;
pub use marginal::Marginal;
pub use model::{Column, FitOptions, Location, SCHEMA_VERSION, SynthModel};
pub use report::{QualityReport, Validity, quality};
pub use sampler::{Sampler, SyntheticRow};

/// Everything that can go wrong fitting, loading or sampling a synthesizer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{rows} training rows is too few; at least {min} are needed")]
    TooFewRows { rows: usize, min: usize },
    #[error(
        "training row {index} has no churn label; the synthesizer generates labels and needs them to learn"
    )]
    MissingLabel { index: usize },
    #[error("{name} is {value}: it {rule}")]
    InvalidParameter {
        name: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error("the synthesizer artifact is invalid: {0}")]
    Artifact(String),
    #[error("synthesizer: {0}")]
    Format(#[from] churn_core::artifact::ArtifactError),
    #[error("numerical problem: {0}")]
    Numerical(String),
}
