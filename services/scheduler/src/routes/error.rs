//! A handler's error: the library errors the routes meet, each mapped once to its status and body.
//!
//! `ApiError` lives in churn-service and the library errors in their own crates, so the mapping needs a
//! type of this crate to hang its `From`s on; handlers return it and `?` does the rest.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use churn_jobs::RunnerError;
use churn_service::{ApiError, QueryError};
use serde_json::json;

/// An [`ApiError`] built from whichever error a handler met.
#[derive(Debug)]
pub(crate) struct Error(ApiError);

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

/// The id of a `/{resources}/{id}` path, or a 400 saying it is not a UUID (`what`: "run", "file").
pub(crate) fn uuid_in_path(
    id: Result<Path<uuid::Uuid>, PathRejection>,
    what: &str,
) -> Result<uuid::Uuid, Error> {
    let Path(id) = id.map_err(|e| {
        ApiError::bad_request(format!("the {what} id is not a UUID"))
            .with_details(json!({ "reason": e.body_text() }))
    })?;
    Ok(id)
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<QueryError> for Error {
    fn from(e: QueryError) -> Self {
        Self(e.into())
    }
}

/// 404 for a job name the runner does not know.
pub(crate) fn unknown_job(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "there is no job named {name:?}; GET /jobs lists them"
    ))
    .with_details(json!({ "job": name }))
}

impl From<RunnerError> for Error {
    fn from(e: RunnerError) -> Self {
        Self(match e {
            RunnerError::UnknownJob(name) => unknown_job(&name),
            RunnerError::Busy(name) => ApiError::new(
                StatusCode::CONFLICT,
                format!("{name} is running; wait for the run to finish (GET /jobs/{name}/runs)"),
                json!({ "job": name }),
            ),
            RunnerError::ShuttingDown => ApiError::unavailable(
                "the scheduler is shutting down; try another replica or later",
            ),
            e => ApiError::internal(e),
        })
    }
}

impl From<churn_store::Error> for Error {
    fn from(e: churn_store::Error) -> Self {
        Self(ApiError::internal(e))
    }
}

impl From<churn_ingest::Error> for Error {
    fn from(e: churn_ingest::Error) -> Self {
        use churn_ingest::Error as E;
        let message = e.to_string();
        Self(match e {
            E::NotFound { key } => ApiError::not_found(message).with_details(json!({ "key": key })),
            E::InvalidKey { key, .. } => {
                ApiError::bad_request(message).with_details(json!({ "key": key }))
            }
            E::Busy { key, .. } => {
                ApiError::new(StatusCode::CONFLICT, message, json!({ "key": key }))
            }
            E::Event(_) => ApiError::bad_request(message),
            // The store's or database's own words stay in the log: a 5xx body carries no internals.
            e => ApiError::unavailable_because(
                "the object store or the database failed; try again",
                e,
            ),
        })
    }
}
