//! What MLflow's client sends: GET query strings with repeated keys, integers as text, JSON bodies
//! whose integers may arrive as `5.0`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use churn_registry::mlflow::filter::SearchRequest;
use serde::Deserialize;

use crate::MlflowError;

/// A GET's query parameters (repeated keys kept, as MLflow's client sends `order_by`).
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn new(raw: Option<String>) -> Params {
        Params(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(crate) fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn required(&self, key: &str) -> Result<&str, MlflowError> {
        self.one(key).ok_or_else(|| {
            MlflowError::invalid(format!("Missing value for required parameter '{key}'"))
        })
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn integer(&self, key: &str) -> Result<Option<i64>, MlflowError> {
        self.one(key).map(|v| integer(key, v)).transpose()
    }

    pub(crate) fn search(&self) -> Result<SearchRequest, MlflowError> {
        Ok(SearchRequest {
            filter: self.one("filter").map(str::to_owned),
            max_results: self.integer("max_results")?,
            order_by: self.all("order_by"),
            page_token: self.one("page_token").map(str::to_owned),
        })
    }
}

/// An integer parameter: optional minus, digits, nothing else.
fn integer(key: &str, value: &str) -> Result<i64, MlflowError> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MlflowError::invalid(format!(
            "Invalid value {value:?} for parameter '{key}': expected an integer"
        )));
    }
    value
        .parse()
        .map_err(|_| MlflowError::invalid(format!("Parameter '{key}' is out of range: {value}")))
}

/// A JSON number that must be a whole number (JSON Schema's integers include `5.0`).
pub(crate) fn whole(n: Option<f64>) -> Result<Option<i64>, MlflowError> {
    match n {
        Some(x) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(Some(x as i64)),
        Some(x) => Err(MlflowError::invalid(format!(
            "max_results must be an integer, not {x}"
        ))),
        None => Ok(None),
    }
}

/// A JSON body: MLflow's client sends `Content-Type: application/json`.
pub(crate) fn json_body<T: for<'de> Deserialize<'de>>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, MlflowError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        });
    if !is_json {
        return Err(MlflowError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_REQUEST",
            "expected a JSON body with Content-Type: application/json",
        ));
    }
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "the body is larger than this service accepts (MAX_BODY_BYTES)"
        } else {
            "the request body could not be read"
        };
        MlflowError::new(status, "BAD_REQUEST", message)
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| MlflowError::invalid(format!("the body is not a valid request: {e}")))
}
