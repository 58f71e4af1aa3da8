//! MLflow's error shape: `{"error_code", "message"}` with MLflow's status codes, mapped once from the
//! registry's error.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// MLflow's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct MlflowErrorBody {
    /// MLflow's error code, e.g. `RESOURCE_DOES_NOT_EXIST` (404) or `INVALID_PARAMETER_VALUE` (400).
    pub error_code: String,
    pub message: String,
}

/// An error answered as MLflow answers it.
#[derive(Debug)]
pub struct MlflowError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl MlflowError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }

    /// 500 with an opaque message; the cause goes to the log under the request's id.
    fn internal(code: &'static str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error in the MLflow API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code,
            "internal error; the scheduler's log has the cause under this response's x-request-id",
        )
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(MlflowErrorBody {
                error_code: self.code.to_owned(),
                message: self.message,
            }),
        )
            .into_response()
    }
}

impl From<churn_registry::Error> for MlflowError {
    fn from(e: churn_registry::Error) -> Self {
        use churn_registry::Error as E;
        match &e {
            E::ModelNotFound { .. }
            | E::VersionNotFound { .. }
            | E::AliasNotFound { .. }
            | E::RunNotFound { .. }
            | E::RunIdNotFound { .. }
            | E::ExperimentNotFound { .. }
            | E::ArtifactNotFound { .. } => Self::new(
                StatusCode::NOT_FOUND,
                "RESOURCE_DOES_NOT_EXIST",
                e.to_string(),
            ),
            E::InvalidName { .. }
            | E::InvalidParameter { .. }
            | E::InvalidReference { .. }
            | E::InvalidJson(_) => Self::invalid(e.to_string()),
            E::AliasMoved { .. } | E::ProtectedAlias { .. } => {
                Self::new(StatusCode::CONFLICT, "RESOURCE_CONFLICT", e.to_string())
            }
            E::ChecksumMismatch { .. } => Self::internal("DATA_LOSS", e),
            _ => Self::internal("INTERNAL_ERROR", e),
        }
    }
}

/// A handler's answer: MLflow's JSON, or MLflow's error.
pub(crate) type Answer<T> = Result<axum::Json<T>, MlflowError>;
