//! HTTP routes: `POST /predict`, `POST /predict/batch`, `GET /model`, `POST /admin/reload`, `GET /ready`
//! (`POST /feedback` is in [`crate::feedback`]).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::middleware;
use churn_core::JsonInputError;
use churn_core::{Customer, FieldError, YesNo};
use churn_service::auth::Caller;
use churn_service::error::json_syntax;
use churn_service::health::{Check, Critical, Readiness, infra_checks};
use churn_service::server::RequestId;
use churn_service::{
    ApiError, ApiJson, ApiQuery, JsonBody, Limits, QueryParams, auth, finish_router_with,
};
use churn_store::serving::{Arm, Endpoint};
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use churn_api::{
    BatchItem, BatchPrediction, Contribution, CustomerBatch, FeatureImportance, ItemStatus,
    ModelInfo, Prediction, ShadowPrediction,
};

use crate::inference::{Item, Request};
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
            (Lat_Long, Churn Score, …) are ignored, and any other unknown key is a 422. The caller's own id \
            for the customer (`customer_id`, `CustomerID` or `Customer ID`, a string of 1 to 128 \
            characters) is kept with the prediction, so that outcomes fed back by that id judge it. Invalid \
            input gets 422 with every invalid field, malformed JSON 400, a body over the limit 413.\n\n\
            Every answer carries a request id, a ULID minted by the service, in `X-Request-Id` (a caller's \
            own `X-Request-Id` is kept beside it as `X-Client-Request-Id`); predictions also return it as \
            `request_id`. Every prediction is recorded in the inference log under that id (INFERENCE_LOG: \
            all, sample:<p> or off), off the request path: when the log's queue is full the prediction is \
            still answered and the loss counted in /metrics (`inference_log_dropped_total`).\n\n\
            When PREDICT_API_KEY or PREDICT_API_KEYS is set, `/predict`, `/model` and `/feedback` need a key \
            in `X-API-Key`; the log records the key's name as the caller. Admin routes need \
            `Authorization: Bearer $ADMIN_TOKEN`."
    ),
    components(schemas(Customer, FieldError)),
    tags((name = "prediction"), (name = "feedback"), (name = "model"), (name = "operations"))
)]
struct ApiDoc;

/// The documented routes, each behind its authentication layer (which runs before the body is read).
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let keyed = OpenApiRouter::new()
        .routes(routes!(predict))
        .routes(routes!(predict_batch))
        .routes(routes!(model_info))
        .routes(routes!(crate::feedback::feedback))
        .route_layer(middleware::from_fn_with_state(
            state.keys.clone(),
            auth::require_prediction_key,
        ));
    let admin =
        OpenApiRouter::new()
            .routes(routes!(reload))
            .route_layer(middleware::from_fn_with_state(
                state.admin_token.clone(),
                auth::require_admin,
            ));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(keyed)
        .merge(admin)
        .routes(routes!(ready))
}

/// The service's whole router.
pub fn router(state: AppState, limits: Limits) -> (axum::Router, utoipa::openapi::OpenApi) {
    let max_batch = state.max_batch;
    let feedback_max = state.feedback_max_batch;
    finish_router_with(routes(&state), state, limits, move |doc| {
        set_batch_limit(doc, max_batch);
        crate::feedback::set_feedback_limit(doc, feedback_max);
    })
}

/// States the configured PREDICT_MAX_BATCH as the batch schema's `maxItems`.
fn set_batch_limit(document: &mut Value, max_batch: usize) {
    let Some(variants) = document
        .pointer_mut("/components/schemas/CustomerBatch/oneOf")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for variant in variants {
        for pointer in ["/maxItems", "/properties/customers/maxItems"] {
            if let Some(max) = variant.pointer_mut(pointer) {
                *max = json!(max_batch);
            }
        }
    }
}

fn served(state: &AppState) -> Result<std::sync::Arc<Served>, ApiError> {
    state.holder.current().ok_or_else(|| {
        ApiError::unavailable(
            "no champion model is loaded yet: train and register one with `churnctl train --register`",
        )
    })
}

/// Query parameters of `POST /predict`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExplainParams {
    /// Add the top feature contributions to the response.
    explain: Option<bool>,
}

impl QueryParams for ExplainParams {
    const RULES: &'static [(&'static str, &'static str)] = &[("explain", "must be true or false")];
}

/// Query parameters of `POST /predict/batch`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ShadowParams {
    /// Also score the batch with the shadow model (the registry's challenger), when one is loaded.
    shadow: Option<bool>,
    /// The platform's own batches say what they are, so that the inference log keeps them apart from
    /// callers' traffic: `synthetic` (the generate loop) or `ingested` (a landed file's scoring).
    #[param(inline)]
    source: Option<DeclaredSource>,
}

/// What a batch's caller may declare it to be.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum DeclaredSource {
    Synthetic,
    Ingested,
}

impl DeclaredSource {
    fn as_str(self) -> &'static str {
        match self {
            DeclaredSource::Synthetic => "synthetic",
            DeclaredSource::Ingested => "ingested",
        }
    }
}

impl QueryParams for ShadowParams {
    const RULES: &'static [(&'static str, &'static str)] = &[
        ("shadow", "must be true or false"),
        ("source", "must be synthetic or ingested"),
    ];
}

fn record(probability: f64, churn: bool) {
    metrics::counter!("predictions_total", "label" => if churn { "Yes" } else { "No" })
        .increment(1);
    metrics::histogram!("churn_probability").record(probability);
}

/// `POST /predict`: one customer's churn prediction.
#[utoipa::path(post, path = "/predict", tag = "prediction", params(ExplainParams), request_body = Customer,
    responses(
        (status = 200, description = "The prediction; `X-Request-Id` carries its `request_id`", body = Prediction),
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
    Extension(RequestId(id)): Extension<RequestId>,
    caller: Option<Extension<Caller>>,
    query: Result<ApiQuery<ExplainParams>, ApiError>,
    JsonBody(body): JsonBody,
) -> Result<ApiJson<Prediction>, ApiError> {
    // Refused only once the body is read: a connection whose body was left unread is closed, and a
    // client reusing it fails instead of reading the 400.
    let ApiQuery(query) = query?;
    let explain = query.explain.unwrap_or(false);
    let endpoint = if explain {
        Endpoint::Explain
    } else {
        Endpoint::Predict
    };
    let request = Request::new(id, endpoint, caller.map(|Extension(c)| c));
    let (customer, customer_id) = Customer::from_json_slice_with_id(&body)?;
    let served = served(&state)?;
    // With an explanation, the row is encoded once for both the score and the contributions.
    let (probability, explanation) = if explain {
        let (p, contributions) = served.model.predict_explained(&customer, 5);
        let body = contributions
            .into_iter()
            .map(|c| Contribution {
                field: c.field,
                contribution: c.contribution,
            })
            .collect();
        (p, Some(body))
    } else {
        let p = served
            .model
            .predict(std::slice::from_ref(&customer))
            .first()
            .copied()
            .unwrap_or(f64::NAN);
        (p, None)
    };
    let churn = served.model.label(probability);
    record(probability, churn);
    if state.log.keeps(id) {
        let item = Item {
            index: 0,
            customer: Arc::new(customer),
            customer_id: customer_id.map(Arc::from),
        };
        let latency = request.latency_us();
        let row = request.row(&item, &served, Arm::Champion, probability, latency);
        state.log.record(vec![row]);
    } else {
        state.log.sampled_out(1);
    }
    Ok(ApiJson(Prediction {
        request_id: request.id_text(),
        predicted_churn_label: YesNo::from_bool(churn),
        churn_probability: probability,
        confidence: if churn {
            probability
        } else {
            1.0 - probability
        },
        threshold: served.model.threshold(),
        model_name: served.name.clone(),
        model_version: served.version,
        predicted_at: request.predicted_at,
        explanation,
    }))
}

/// `POST /predict/batch`: predictions for many customers; an invalid one fails only its own item.
/// The body is a JSON array of customers, or `{"customers": [...]}`.
#[utoipa::path(post, path = "/predict/batch", tag = "prediction", params(ShadowParams), request_body = CustomerBatch,
    responses(
        (status = 200, description = "One result per customer, in order; `X-Request-Id` carries its `request_id`", body = BatchPrediction),
        (status = 400, description = "Malformed JSON", body = churn_service::ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = churn_service::ErrorBody),
        (status = 408, description = "The request took longer than REQUEST_TIMEOUT_SECS", body = churn_service::ErrorBody),
        (status = 413, description = "Body too large", body = churn_service::ErrorBody),
        (status = 415, description = "Not JSON", body = churn_service::ErrorBody),
        (status = 422, description = "Not an array, empty, or more customers than PREDICT_MAX_BATCH", body = churn_service::ErrorBody),
        (status = 503, description = "No champion model loaded yet", body = churn_service::ErrorBody),
    ))]
async fn predict_batch(
    State(state): State<AppState>,
    Extension(RequestId(id)): Extension<RequestId>,
    caller: Option<Extension<Caller>>,
    query: Result<ApiQuery<ShadowParams>, ApiError>,
    JsonBody(body): JsonBody,
) -> Result<ApiJson<BatchPrediction>, ApiError> {
    let request = Request::new(id, Endpoint::Batch, caller.map(|Extension(c)| c));
    // Refused only once the body is read: a connection whose body was left unread is closed, and a
    // client reusing it fails instead of reading the 400.
    let ApiQuery(query) = query?;
    let mut request = request;
    if let Some(source) = query.source {
        request.source = source.as_str();
    }
    let with_shadow = query.shadow.unwrap_or(false);
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
    let mut ids: Vec<Option<String>> = Vec::with_capacity(items.len());
    let item_errors: Vec<Option<Vec<FieldError>>> = items
        .iter()
        .map(
            |item| match Customer::from_json_slice_with_id(item.get().as_bytes()) {
                Ok((customer, id)) => {
                    valid.push(customer);
                    ids.push(id);
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
    let shadow_model = if with_shadow {
        state.shadow.as_ref().and_then(|s| s.current())
    } else {
        None
    };
    // A large batch is milliseconds of CPU: keep it off the threads that serve other requests.
    let model = served.clone();
    let shadow_served = shadow_model.clone();
    let (probabilities, shadow_probabilities, valid) = tokio::task::spawn_blocking(move || {
        let shadow = shadow_served.map(|s| s.model.predict(&valid));
        (model.model.predict(&valid), shadow, valid)
    })
    .await
    .map_err(ApiError::internal)?;
    if state.log.keeps(id) {
        log_batch(
            &state,
            &request,
            &item_errors,
            valid,
            ids,
            (&served, &probabilities),
            shadow_model.as_deref().zip(shadow_probabilities.as_deref()),
        );
    } else {
        state.log.sampled_out(valid_count);
    }
    let shadow = shadow_model
        .zip(shadow_probabilities)
        .map(|(model, probabilities)| {
            let mut next = probabilities.into_iter();
            ShadowPrediction {
                model_name: model.name.clone(),
                model_version: model.version,
                threshold: model.model.threshold(),
                churn_probabilities: item_errors
                    .iter()
                    .map(|errors| errors.is_none().then(|| next.next()).flatten())
                    .collect(),
            }
        });
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
                    status: ItemStatus::Ok,
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
                status: ItemStatus::Invalid,
                predicted_churn_label: None,
                churn_probability: None,
                confidence: None,
                errors: Some(errors),
            },
        })
        .collect();
    Ok(ApiJson(BatchPrediction {
        request_id: request.id_text(),
        model_name: served.name.clone(),
        model_version: served.version,
        threshold: served.model.threshold(),
        predicted_at: request.predicted_at,
        valid: valid_count,
        invalid: results.len() - valid_count,
        results,
        shadow,
    }))
}

/// Queues a batch's rows: one per valid customer (its `item` is its index in the request), and one more
/// per customer the shadow scored.
fn log_batch(
    state: &AppState,
    request: &Request,
    item_errors: &[Option<Vec<FieldError>>],
    valid: Vec<Customer>,
    ids: Vec<Option<String>>,
    (served, probabilities): (&Served, &[f64]),
    shadow: Option<(&Served, &[f64])>,
) {
    let latency = request.latency_us();
    let indexes = item_errors
        .iter()
        .enumerate()
        .filter_map(|(index, errors)| errors.is_none().then_some(index));
    let rows_per_item = if shadow.is_some() { 2 } else { 1 };
    let mut rows = Vec::with_capacity(valid.len() * rows_per_item);
    for (n, ((index, customer), id)) in indexes.zip(valid).zip(ids).enumerate() {
        let item = Item {
            index,
            customer: Arc::new(customer),
            customer_id: id.map(Arc::from),
        };
        if let Some(&p) = probabilities.get(n) {
            rows.push(request.row(&item, served, Arm::Champion, p, latency));
        }
        if let Some((shadow, shadow_probabilities)) = shadow
            && let Some(&p) = shadow_probabilities.get(n)
        {
            rows.push(request.row(&item, shadow, Arm::Shadow, p, latency));
        }
    }
    state.log.record(rows);
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

/// `GET /model`: what is being served.
#[utoipa::path(get, path = "/model", tag = "model", responses(
    (status = 200, description = "The served model", body = ModelInfo),
    (status = 401, description = "Missing or wrong API key (when PREDICT_API_KEY is set)", body = churn_service::ErrorBody),
    (status = 503, description = "No model loaded yet", body = churn_service::ErrorBody)))]
async fn model_info(State(state): State<AppState>) -> Result<ApiJson<ModelInfo>, ApiError> {
    let served = served(&state)?;
    let m = &served.model;
    Ok(ApiJson(ModelInfo {
        model_name: served.name.clone(),
        model_version: served.version,
        artifact_sha256: served.sha256.clone(),
        loaded_at: served.loaded_at,
        family: m.family().to_owned(),
        threshold: m.threshold(),
        feature_importance: m
            .importance()
            .iter()
            .map(|i| FeatureImportance {
                field: i.field.clone(),
                importance: i.importance,
            })
            .collect(),
        cv_metrics: m.training().cv_metrics,
    }))
}

/// `POST /admin/reload`: check the registry now instead of waiting for a notification.
#[utoipa::path(post, path = "/admin/reload", tag = "model", security(("admin_token" = [])), responses(
    (status = 200, description = "What the reload did"),
    (status = 401, description = "No admin token", body = churn_service::ErrorBody),
    (status = 403, description = "A wrong admin token, or ADMIN_TOKEN is not set", body = churn_service::ErrorBody),
    (status = 503, description = "The reload failed; the served model is kept", body = churn_service::ErrorBody)))]
async fn reload(State(state): State<AppState>) -> Result<ApiJson<Value>, ApiError> {
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
        Err(e) => Err(ApiError::unavailable_because(
            "the reload failed and the served model is kept; retry later, and see the service log \
             (under this response's x-request-id) for the cause",
            e,
        )),
    }
}

/// `GET /ready`: ready when a model is loaded; degraded when the registry, the object store or the last
/// reload failed (the loaded model keeps serving); not ready without a model.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Ready, or degraded but serving", body = Readiness),
    (status = 503, description = "No model loaded", body = Readiness)))]
async fn ready(State(state): State<AppState>) -> Readiness {
    let compute = async {
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
            Some(s) => Check::pass(Some(format!("version {}", s.version))),
            None => Check::down(
                "model",
                true,
                "no champion model loaded: register one with churnctl train --register",
            ),
        };
        checks.insert("model".to_owned(), model);
        if let Some(error) = state.holder.last_error() {
            checks.insert(
                "model_refresh".to_owned(),
                Check::degraded("model_refresh", error),
            );
        }
        // The shadow never decides readiness: without one, batches are answered without shadow scores.
        if let Some(shadow) = &state.shadow {
            let check = match (shadow.current(), shadow.last_error()) {
                (_, Some(error)) => Check::degraded("shadow_model", error),
                (Some(s), None) => Check::pass(Some(format!("version {}", s.version))),
                (None, None) => Check::pass(Some("no challenger to shadow-score".to_owned())),
            };
            let check = Check {
                critical: false,
                ..check
            };
            checks.insert("shadow_model".to_owned(), check);
        }
        Readiness::from_checks(checks)
    };
    state.ready.get(compute).await
}
