//! HTTP routes: `POST /predict`, `POST /predict/batch`, `GET /model`, `POST /admin/reload`, `GET /ready`.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Utc};
use churn_core::JsonInputError;
use churn_core::{Customer, FieldError, YesNo};
use churn_service::error::json_syntax;
use churn_service::health::{Check, Critical, Readiness, infra_checks};
use churn_service::{ApiError, ApiJson, JsonBody, Limits, finish_router};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::serving::Served;
use crate::{AppState, Refresh};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "classifier",
        description = "Churn predictions from the model registry's champion, held in memory and swapped \
            atomically when the champion alias moves.\n\n\
            Customers are JSON objects whose keys may be snake_case (`tenure_months`), the dataset's headers \
            (`Tenure Months`) or the original API's names (`Tenure_Months`); identifier and leakage keys \
            (CustomerID, Lat_Long, Churn Score, …) are ignored, and any other unknown key is a 422. Invalid \
            input gets 422 with every invalid field, malformed JSON 400, a body over the limit 413.\n\n\
            When PREDICT_API_KEY is set, `/predict` routes need it in `X-API-Key`. Admin routes need \
            `Authorization: Bearer $ADMIN_TOKEN`."
    ),
    components(schemas(Customer, FieldError)),
    tags((name = "prediction"), (name = "model"), (name = "operations"))
)]
struct ApiDoc;

/// The documented routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(predict))
        .routes(routes!(predict_batch))
        .routes(routes!(model_info))
        .routes(routes!(reload))
        .routes(routes!(ready))
}

/// The service's whole router.
pub fn router(state: AppState, limits: Limits) -> (axum::Router, utoipa::openapi::OpenApi) {
    finish_router(routes(), state, limits)
}

/// Constant-time comparison, so a wrong key's timing says nothing about the right one.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn check_api_key(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &state.api_key else {
        return Ok(());
    };
    let given = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| bearer(headers));
    match given {
        Some(g) if same(g.as_bytes(), key.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("the API key is wrong")),
        None => Err(ApiError::unauthorized(
            "this service needs an API key: send it in the X-API-Key header",
        )),
    }
}

fn check_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.admin_token else {
        return Err(ApiError::forbidden(
            "admin routes are disabled: set ADMIN_TOKEN on the service to enable them",
        ));
    };
    match bearer(headers) {
        Some(given) if same(given.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("the admin token is wrong")),
        None => Err(ApiError::unauthorized(
            "admin routes need Authorization: Bearer <ADMIN_TOKEN>",
        )),
    }
}

fn served(state: &AppState) -> Result<std::sync::Arc<Served>, ApiError> {
    state.holder.current().ok_or_else(|| {
        ApiError::unavailable(
            "no champion model is loaded yet: train and register one with `churnctl train --register`",
        )
        .with_details(json!({ "last_error": state.holder.last_error() }))
    })
}

/// One field's contribution to a prediction, in log-odds (positive pushes towards churn).
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ContributionBody {
    field: String,
    contribution: f64,
}

/// A prediction for one customer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Prediction {
    /// "Yes" when P(churn) ≥ the model's threshold.
    predicted_churn_label: YesNo,
    /// P(churn), calibrated.
    churn_probability: f64,
    /// Probability of the predicted label: max(p, 1 − p) around the threshold's side.
    confidence: f64,
    /// The decision threshold stored with the model.
    threshold: f64,
    model_name: String,
    model_version: i32,
    predicted_at: DateTime<Utc>,
    /// With `?explain=true`: the fields that moved this prediction most.
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<Vec<ContributionBody>>,
}

/// Query parameters of `POST /predict`.
#[derive(Debug, utoipa::IntoParams)]
#[allow(dead_code)] // documents the parameters; `parse_explain` reads them for precise errors
struct ExplainParams {
    /// Add the top feature contributions to the response.
    explain: Option<bool>,
}

/// Reads `?explain=true|false`; any other parameter or value is a 400 naming it.
fn parse_explain(raw: Option<&str>) -> Result<bool, ApiError> {
    let mut explain = false;
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let bad = |rule: &str| {
            ApiError::bad_request(format!("invalid query parameter {key}={value:?}: {rule}"))
                .with_details(json!({ "parameter": key, "value": value, "rule": rule }))
        };
        match (key.as_ref(), value.as_ref()) {
            ("explain", "true" | "1" | "") => explain = true,
            ("explain", "false" | "0") => explain = false,
            ("explain", _) => return Err(bad("must be true or false")),
            _ => return Err(bad("unknown parameter; /predict takes only explain")),
        }
    }
    Ok(explain)
}

fn record(probability: f64, churn: bool) {
    metrics::counter!("predictions_total", "label" => if churn { "Yes" } else { "No" })
        .increment(1);
    metrics::histogram!("churn_probability").record(probability);
}

fn invalid_customer(errors: &churn_core::ValidationErrors) -> ApiError {
    ApiError::invalid(
        format!("the customer has {} invalid field(s)", errors.len()),
        json!({ "errors": errors }),
    )
}

/// `POST /predict`: one customer's churn prediction.
#[utoipa::path(post, path = "/predict", tag = "prediction", params(ExplainParams), request_body = Customer,
    responses(
        (status = 200, description = "The prediction", body = Prediction),
        (status = 400, description = "Malformed JSON", body = churn_service::ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = churn_service::ErrorBody),
        (status = 408, description = "The request took longer than REQUEST_TIMEOUT_SECS", body = churn_service::ErrorBody),
        (status = 413, description = "Body too large", body = churn_service::ErrorBody),
        (status = 415, description = "Not JSON", body = churn_service::ErrorBody),
        (status = 422, description = "Invalid fields, each with its value and rule", body = churn_service::ErrorBody),
        (status = 503, description = "No champion model loaded yet", body = churn_service::ErrorBody),
    ))]
async fn predict(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    JsonBody(body): JsonBody,
) -> Result<ApiJson<Prediction>, ApiError> {
    check_api_key(&state, &headers)?;
    let explain = parse_explain(query.as_deref())?;
    let customer = Customer::from_json_slice(&body).map_err(|e| match e {
        JsonInputError::Syntax(e) => json_syntax(&e),
        JsonInputError::Invalid(errors) => invalid_customer(&errors),
    })?;
    let served = served(&state)?;
    let probability = served
        .model
        .predict(std::slice::from_ref(&customer))
        .first()
        .copied()
        .unwrap_or(f64::NAN);
    let churn = served.model.label(probability);
    record(probability, churn);
    let explanation = explain.then(|| {
        served
            .model
            .explain(&customer, 5)
            .into_iter()
            .map(|c| ContributionBody {
                field: c.field,
                contribution: c.contribution,
            })
            .collect()
    });
    Ok(ApiJson(Prediction {
        predicted_churn_label: YesNo::from_bool(churn),
        churn_probability: probability,
        confidence: if churn {
            probability
        } else {
            1.0 - probability
        },
        threshold: served.model.model.threshold,
        model_name: served.name.clone(),
        model_version: served.version,
        predicted_at: Utc::now(),
        explanation,
    }))
}

/// One item of a batch answer: a prediction, or the item's errors.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct BatchItem {
    /// Position in the request.
    index: usize,
    /// "ok" or "invalid".
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    predicted_churn_label: Option<YesNo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    churn_probability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<FieldError>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct BatchPrediction {
    model_name: String,
    model_version: i32,
    threshold: f64,
    predicted_at: DateTime<Utc>,
    valid: usize,
    invalid: usize,
    /// One item per customer, in request order.
    results: Vec<BatchItem>,
}

/// `POST /predict/batch`: predictions for many customers; an invalid one fails only its own item.
/// The body is a JSON array of customers, or `{"customers": [...]}`.
#[utoipa::path(post, path = "/predict/batch", tag = "prediction", request_body = Vec<Customer>,
    responses(
        (status = 200, description = "One result per customer, in order", body = BatchPrediction),
        (status = 400, description = "Malformed JSON", body = churn_service::ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = churn_service::ErrorBody),
        (status = 408, description = "The request took longer than REQUEST_TIMEOUT_SECS", body = churn_service::ErrorBody),
        (status = 413, description = "Body too large", body = churn_service::ErrorBody),
        (status = 422, description = "Not an array, empty, or more customers than PREDICT_MAX_BATCH", body = churn_service::ErrorBody),
        (status = 503, description = "No champion model loaded yet", body = churn_service::ErrorBody),
    ))]
async fn predict_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<ApiJson<BatchPrediction>, ApiError> {
    check_api_key(&state, &headers)?;
    let items = batch_items(&body)?;
    if items.is_empty() {
        return Err(ApiError::invalid(
            "the batch is empty",
            json!({ "max_batch": state.max_batch }),
        ));
    }
    if items.len() > state.max_batch {
        return Err(ApiError::invalid(
            format!(
                "the batch has {} customers; at most {} are accepted (PREDICT_MAX_BATCH)",
                items.len(),
                state.max_batch
            ),
            json!({ "customers": items.len(), "max_batch": state.max_batch }),
        ));
    }
    let served = served(&state)?;
    // The valid customers move into `valid` in order; each item keeps only its errors, if any.
    let mut valid: Vec<Customer> = Vec::with_capacity(items.len());
    let item_errors: Vec<Option<Vec<FieldError>>> = items
        .iter()
        .map(
            |item| match Customer::from_json_slice(item.get().as_bytes()) {
                Ok(customer) => {
                    valid.push(customer);
                    None
                }
                Err(JsonInputError::Invalid(errors)) => Some(errors.0),
                // Each item is a well-formed JSON value already; kept total anyway.
                Err(JsonInputError::Syntax(e)) => {
                    Some(vec![FieldError::new("$", Value::Null, e.to_string())])
                }
            },
        )
        .collect();
    let valid_count = valid.len();
    // A large batch is milliseconds of CPU: keep it off the threads that serve other requests.
    let model = served.clone();
    let probabilities = tokio::task::spawn_blocking(move || model.model.predict(&valid))
        .await
        .map_err(ApiError::internal)?;
    let mut next = probabilities.into_iter();
    let results: Vec<BatchItem> = item_errors
        .into_iter()
        .enumerate()
        .map(|(index, errors)| match errors {
            None => {
                let probability = next.next().unwrap_or(f64::NAN);
                let churn = served.model.label(probability);
                record(probability, churn);
                BatchItem {
                    index,
                    status: "ok",
                    predicted_churn_label: Some(YesNo::from_bool(churn)),
                    churn_probability: Some(probability),
                    confidence: Some(if churn {
                        probability
                    } else {
                        1.0 - probability
                    }),
                    errors: None,
                }
            }
            Some(errors) => BatchItem {
                index,
                status: "invalid",
                predicted_churn_label: None,
                churn_probability: None,
                confidence: None,
                errors: Some(errors),
            },
        })
        .collect();
    Ok(ApiJson(BatchPrediction {
        model_name: served.name.clone(),
        model_version: served.version,
        threshold: served.model.model.threshold,
        predicted_at: Utc::now(),
        valid: valid_count,
        invalid: results.len() - valid_count,
        results,
    }))
}

/// The customers of a batch body (an array, or `{"customers": [...]}`), each still unparsed.
fn batch_items(body: &[u8]) -> Result<Vec<&serde_json::value::RawValue>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapped<'a> {
        #[serde(borrow)]
        customers: Vec<&'a serde_json::value::RawValue>,
    }
    let shape = || {
        ApiError::invalid(
            "the body must be a JSON array of customers (or {\"customers\": [...]})",
            json!({}),
        )
    };
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let parsed = match first {
        Some(b'[') => serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(body),
        Some(b'{') => serde_json::from_slice::<Wrapped<'_>>(body).map(|w| w.customers),
        _ => {
            // Either not JSON (400) or JSON of the wrong shape (422).
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                    Err(e) => json_syntax(&e),
                    Ok(_) => shape(),
                },
            );
        }
    };
    parsed.map_err(|e| {
        if e.is_data() {
            shape()
        } else {
            json_syntax(&e)
        }
    })
}

/// The served model.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ModelInfo {
    model_name: String,
    model_version: i32,
    artifact_sha256: Option<String>,
    loaded_at: DateTime<Utc>,
    family: String,
    threshold: f64,
    /// Permutation importance by customer field, most important first.
    #[schema(value_type = Object)]
    feature_importance: Value,
    #[schema(value_type = Object)]
    cv_metrics: Value,
}

/// `GET /model`: what is being served.
#[utoipa::path(get, path = "/model", tag = "model", responses(
    (status = 200, description = "The served model", body = ModelInfo),
    (status = 503, description = "No model loaded yet", body = churn_service::ErrorBody)))]
async fn model_info(State(state): State<AppState>) -> Result<ApiJson<ModelInfo>, ApiError> {
    let served = served(&state)?;
    let m = &served.model.model;
    Ok(ApiJson(ModelInfo {
        model_name: served.name.clone(),
        model_version: served.version,
        artifact_sha256: served.sha256.clone(),
        loaded_at: served.loaded_at,
        family: m.family.clone(),
        threshold: m.threshold,
        feature_importance: json!(m.importance),
        cv_metrics: json!(m.training.cv_metrics),
    }))
}

/// `POST /admin/reload`: check the registry now instead of waiting for a notification.
#[utoipa::path(post, path = "/admin/reload", tag = "model", security(("admin_token" = [])), responses(
    (status = 200, description = "What the reload did"),
    (status = 401, description = "Missing or wrong admin token", body = churn_service::ErrorBody),
    (status = 403, description = "ADMIN_TOKEN is not set", body = churn_service::ErrorBody),
    (status = 503, description = "The reload failed; the served model is kept", body = churn_service::ErrorBody)))]
async fn reload(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<ApiJson<Value>, ApiError> {
    check_admin(&state, &headers)?;
    match state.holder.refresh().await {
        Ok(outcome) => {
            let version = state.holder.current().map(|s| s.version);
            let outcome = match outcome {
                Refresh::Unchanged => "unchanged",
                Refresh::Loaded { .. } => "loaded",
                Refresh::NoChampion => "no_champion",
            };
            Ok(ApiJson(
                json!({ "outcome": outcome, "model_version": version }),
            ))
        }
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the reload failed; the served model is kept",
            json!({ "reason": e }),
        )),
    }
}

/// `GET /ready`: ready when a model is loaded; degraded when the registry, the object store or the last
/// reload failed (the loaded model keeps serving); not ready without a model.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Ready, or degraded but serving", body = Readiness),
    (status = 503, description = "No model loaded", body = Readiness)))]
async fn ready(State(state): State<AppState>) -> Readiness {
    // The model in memory keeps serving through either outage.
    let mut checks = infra_checks(
        &state.infra,
        Critical {
            database: false,
            object_store: false,
        },
    )
    .await;
    let model = match state.holder.current() {
        Some(s) => Check::pass(Some(format!("{} version {}", s.name, s.version))),
        None => Check::fail(
            true,
            "no champion model loaded: register one with churnctl train --register",
        ),
    };
    checks.insert("model".to_owned(), model);
    if let Some(error) = state.holder.last_error() {
        checks.insert("model_refresh".to_owned(), Check::fail(false, error));
    }
    Readiness::from_checks(checks)
}
