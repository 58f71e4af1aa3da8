//! The services' API error: a status code and a JSON body `{error, details}`.
//!
//! 4xx bodies say what was wrong and what to do; 5xx bodies are opaque and the cause goes to the log.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use churn_api::ErrorBody;
use serde_json::{Value, json};

/// An error a handler returns.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>, details: Value) -> Self {
        Self {
            status,
            error: error.into(),
            details,
        }
    }

    /// Replaces the details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, json!({}))
    }

    /// 422 with the invalid fields.
    pub fn invalid(error: impl Into<String>, details: Value) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, error, details)
    }

    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error, json!({}))
    }

    pub fn unavailable(error: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, error, json!({}))
    }

    pub fn unauthorized(error: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, error, json!({}))
    }

    pub fn forbidden(error: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, error, json!({}))
    }

    /// 500 with an opaque body; `cause` is logged (with the request's id), not sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the service log has the cause under this response's x-request-id",
            json!({}),
        )
    }

    /// 503 with an opaque body saying what the caller can do; `cause` is logged (with the request's
    /// id), not sent.
    pub fn unavailable_because(
        what_to_do: impl Into<String>,
        cause: impl std::fmt::Display,
    ) -> Self {
        tracing::warn!(%cause, "service unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, what_to_do, json!({}))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.error,
            details: self.details,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let error = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "expected a JSON body with Content-Type: application/json".to_owned()
            }
            JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON".to_owned(),
            JsonRejection::JsonDataError(_) => {
                "the JSON body does not have the expected shape".to_owned()
            }
            JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
                "the body is larger than this service accepts".to_owned()
            }
            _ => "the request body could not be read".to_owned(),
        };
        // serde_json's message names the line and column (or the missing field), which helps fix the body.
        Self::new(status, error, json!({ "reason": rejection.body_text() }))
    }
}

/// 400 for a customer body that is not JSON, 422 naming every invalid field with its value and rule.
impl From<churn_core::JsonInputError> for ApiError {
    fn from(e: churn_core::JsonInputError) -> Self {
        match e {
            churn_core::JsonInputError::Syntax(e) => json_syntax(&e),
            churn_core::JsonInputError::Invalid(errors) => ApiError::invalid(
                format!("the customer has {} invalid field(s)", errors.len()),
                json!({ "errors": errors }),
            ),
        }
    }
}

/// A JSON body extractor whose rejection is an [`ApiError`], so malformed JSON gets the same
/// `{error, details}` body as every other error.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// Fallback for unknown routes: 404 with the standard body.
pub async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}; see /openapi.json",
        request.method(),
        request.uri().path()
    ))
}

/// Fallback for a known route called with the wrong method: 405 with the standard body.
pub async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}; see /openapi.json",
            request.method(),
            request.uri().path()
        ),
        json!({}),
    )
}

/// A JSON request body as raw bytes, for handlers that parse it themselves (without an intermediate
/// `serde_json::Value`). The content type must be JSON (415 otherwise) and the size within the limit
/// (413); both rejections carry the standard body.
#[derive(Debug, Clone)]
pub struct JsonBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !json {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a JSON body with Content-Type: application/json",
                json!({}),
            ));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                let error = if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    "the body is larger than this service accepts"
                } else {
                    "the request body could not be read"
                };
                ApiError::new(status, error, json!({ "reason": rejection.body_text() }))
            })?;
        Ok(JsonBody(bytes))
    }
}

/// 400 for a body that is not JSON, naming where it broke.
pub fn json_syntax(error: &serde_json::Error) -> ApiError {
    ApiError::bad_request("the body is not valid JSON")
        .with_details(json!({ "reason": error.to_string() }))
}
