//! What the classifier keeps of real traffic, without HTTP: the inference log's bounded queue and its
//! batching writer ([`log`]), and the outcomes callers feed back ([`feedback`]).

pub mod feedback;
pub mod log;

pub use feedback::parse_outcomes;
pub use log::{InferenceLog, LogWriter};

/// Why a feedback body was refused, or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the body is not valid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    #[error("{0}")]
    Shape(String),
    #[error("the body has {count} outcomes; at most {max} are accepted (FEEDBACK_MAX_BATCH)")]
    TooMany { count: usize, max: usize },
    #[error("{} outcome field(s) are invalid", .0.len())]
    Invalid(Vec<churn_core::FieldError>),
    #[error(transparent)]
    Store(#[from] churn_store::Error),
}

/// Stores a request's outcomes (already parsed) in one statement: all of them or none.
pub async fn store_outcomes(
    pool: &sqlx::PgPool,
    outcomes: &[churn_store::serving::NewOutcome],
    caller: &str,
) -> Result<u64, Error> {
    Ok(churn_store::serving::insert_outcomes(pool, outcomes, "api", caller).await?)
}
