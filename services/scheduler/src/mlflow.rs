//! The MLflow-compatible REST subset under `/api/2.0/mlflow/` and `/api/2.0/mlflow-artifacts/`: MLflow's
//! own client (`MlflowClient`, `mlflow.artifacts.download_artifacts("models:/NAME@ALIAS")`) reads the
//! registry, its runs and its artifacts, and moves aliases with the admin token (`MLFLOW_TRACKING_TOKEN`).
//! The shapes and the search language live in `churn_registry::mlflow`; errors here are MLflow's
//! `{"error_code", "message"}` with MLflow's status codes.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use churn_registry::Registry;
use churn_registry::mlflow::{
    self as ml, Experiment, FileInfo, Metric, ModelVersion, RegisteredModel, Run, filter,
    filter::SearchRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

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
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
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

type Answer<T> = Result<axum::Json<T>, MlflowError>;

/// A GET's query parameters (repeated keys kept, as MLflow's client sends `order_by`).
struct Params(Vec<(String, String)>);

impl Params {
    fn new(raw: Option<String>) -> Params {
        Params(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, key: &str) -> Result<&str, MlflowError> {
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

    fn integer(&self, key: &str) -> Result<Option<i64>, MlflowError> {
        self.one(key).map(|v| integer(key, v)).transpose()
    }

    fn search(&self) -> Result<SearchRequest, MlflowError> {
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
fn whole(n: Option<f64>) -> Result<Option<i64>, MlflowError> {
    match n {
        Some(x) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(Some(x as i64)),
        Some(x) => Err(MlflowError::invalid(format!(
            "max_results must be an integer, not {x}"
        ))),
        None => Ok(None),
    }
}

/// A JSON body: MLflow's client sends `Content-Type: application/json`.
fn json_body<T: for<'de> Deserialize<'de>>(
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
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

fn registry(state: &AppState) -> Registry {
    Registry::new(state.infra.pool.clone(), state.infra.objects.clone())
}

// ----- response bodies --------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
struct MlflowRegisteredModelsPage {
    registered_models: Vec<RegisteredModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct MlflowRegisteredModelBody {
    registered_model: RegisteredModel,
}

#[derive(Debug, Serialize, ToSchema)]
struct MlflowModelVersionBody {
    model_version: ModelVersion,
}

#[derive(Debug, Serialize, ToSchema)]
struct MlflowModelVersionsPage {
    model_versions: Vec<ModelVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct MlflowDownloadUriBody {
    /// `mlflow-artifacts:/models/NAME/VERSION`, resolved by the client against its tracking URI.
    artifact_uri: String,
}

/// MLflow answers alias changes with an empty object.
#[derive(Debug, Serialize, ToSchema)]
struct MlflowEmptyBody {}

#[derive(Debug, Serialize, ToSchema)]
struct MlflowExperimentBody {
    experiment: Experiment,
}

#[derive(Debug, Serialize, ToSchema)]
struct MlflowExperimentsPage {
    experiments: Vec<Experiment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct MlflowRunBody {
    run: Run,
}

#[derive(Debug, Serialize, ToSchema)]
struct MlflowRunsPage {
    runs: Vec<Run>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct MlflowMetricHistory {
    metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct MlflowArtifactList {
    files: Vec<FileInfo>,
}

// ----- request documentation (the handlers read the raw query: `order_by` repeats) --------------------

/// Query of `registered-models/search` and `model-versions/search`. The patterns of `filter`,
/// `order_by` and `page_token` are set per route from `churn_registry::mlflow::filter`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SearchQuery {
    /// A filter, e.g. `name = 'churn-classifier'` (clauses joined by AND).
    filter: Option<String>,
    /// Results per page (default 100 for models, 10,000 for versions).
    #[param(minimum = 1, maximum = 1000)]
    max_results: Option<i64>,
    /// Orderings, e.g. `name DESC`.
    order_by: Option<Vec<String>>,
    /// The `next_page_token` of the previous page.
    page_token: Option<String>,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct NameQuery {
    /// The registered model.
    name: String,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct VersionQuery {
    /// The registered model.
    name: String,
    /// The version number, e.g. `3`.
    #[param(pattern = r"^[0-9]{1,9}$")]
    version: String,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct AliasQuery {
    /// The registered model.
    name: String,
    /// The alias, e.g. `champion`.
    alias: String,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ExperimentNameQuery {
    /// The experiment's name (the model name its training runs are logged under).
    experiment_name: String,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ExperimentIdQuery {
    /// The experiment's id.
    experiment_id: String,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct RunQuery {
    /// The run's id.
    run_id: String,
    /// The run's id (MLflow's older name; `run_id` wins).
    run_uuid: Option<String>,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct HistoryQuery {
    /// The run's id.
    run_id: String,
    /// The run's id (MLflow's older name; `run_id` wins).
    run_uuid: Option<String>,
    /// The metric.
    metric_key: String,
    /// Values per page.
    #[param(minimum = 1, maximum = 25000)]
    max_results: Option<i64>,
    /// The `next_page_token` of the previous page.
    #[param(pattern = r"^[0-9]{1,9}$")]
    page_token: Option<String>,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ArtifactsQuery {
    /// A folder: `models/NAME/VERSION` (MLflow's client sends the path of the version's `source`).
    path: Option<String>,
}

/// Body of `registered-models/alias` (POST).
#[derive(Debug, Deserialize, ToSchema)]
struct MlflowSetAlias {
    /// The registered model.
    name: String,
    /// The alias; moving `champion` is a promotion (recorded as a manual decision; the classifier swaps).
    #[schema(pattern = r"^[a-z][a-z0-9_-]{0,63}$")]
    alias: String,
    /// The version number, e.g. `"3"`.
    #[schema(pattern = r"^[0-9]{1,9}$")]
    version: String,
}

/// Body of `registered-models/alias` (DELETE), as MLflow's client sends it.
#[derive(Debug, Deserialize, ToSchema)]
struct MlflowDeleteAlias {
    /// The registered model.
    name: String,
    /// The alias (`champion` cannot be deleted, only moved).
    alias: String,
}

/// Which runs or experiments a search covers (this registry deletes none).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum MlflowViewType {
    ActiveOnly,
    DeletedOnly,
    All,
}

/// Body of `experiments/search`.
#[derive(Debug, Deserialize, ToSchema)]
struct MlflowSearchExperiments {
    #[schema(minimum = 1, maximum = 50000, value_type = Option<i64>)]
    max_results: Option<f64>,
    page_token: Option<String>,
    filter: Option<String>,
    #[serde(default)]
    order_by: Vec<String>,
    view_type: Option<MlflowViewType>,
}

/// Body of `runs/search`.
#[derive(Debug, Deserialize, ToSchema)]
struct MlflowSearchRuns {
    /// The experiments (all when empty).
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    run_view_type: Option<MlflowViewType>,
    #[schema(minimum = 1, maximum = 50000, value_type = Option<i64>)]
    max_results: Option<f64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    paths(download_artifact),
    components(schemas(MlflowErrorBody)),
    tags((name = "mlflow", description = "MLflow-compatible REST subset: MLflow's clients read the \
        registry (models, versions, aliases, experiments, runs, metric histories) and download \
        `models:/NAME@ALIAS`; moving an alias needs `Authorization: Bearer $ADMIN_TOKEN` \
        (`MLFLOW_TRACKING_TOKEN`). Errors are MLflow's `{error_code, message}`."))
)]
struct MlflowDoc;

/// The MLflow routes: reads open, alias changes behind the admin token (checked before any body is
/// read, answered in MLflow's error shape).
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let writes = OpenApiRouter::new()
        .routes(routes!(set_alias, delete_alias))
        .route_layer(middleware::from_fn_with_state(
            state.admin_token.clone(),
            require_admin,
        ));
    OpenApiRouter::with_openapi(MlflowDoc::openapi())
        .routes(routes!(search_registered_models))
        .routes(routes!(get_registered_model))
        .routes(routes!(get_model_version))
        .routes(routes!(search_model_versions))
        .routes(routes!(get_download_uri))
        .routes(routes!(get_alias))
        .merge(writes)
        .routes(routes!(get_experiment_by_name))
        .routes(routes!(get_experiment))
        .routes(routes!(search_experiments))
        .routes(routes!(get_run))
        .routes(routes!(search_runs))
        .routes(routes!(metric_history))
        .routes(routes!(list_artifacts))
        // A catch-all path cannot be stated in OpenAPI: the document names it `{path}` (MlflowDoc).
        .route(
            "/api/2.0/mlflow-artifacts/artifacts/{*path}",
            get(download_artifact),
        )
        // MLflow's answer to an endpoint this subset does not serve (the client names it in its error).
        .route("/api/2.0/mlflow/{*rest}", any(endpoint_not_found))
}

async fn endpoint_not_found(request: Request) -> MlflowError {
    MlflowError::new(
        StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
        format!(
            "{} {} is not part of this server's MLflow subset; /openapi.json (tag mlflow) lists it",
            request.method(),
            request.uri().path()
        ),
    )
}

/// The admin check in MLflow's shape: 401 `UNAUTHENTICATED` without a token, 403 `PERMISSION_DENIED`
/// with a wrong one or when the scheduler has no ADMIN_TOKEN.
async fn require_admin(
    State(token): State<Option<churn_config::Secret>>,
    request: Request,
    next: Next,
) -> Response {
    match churn_service::auth::check_admin(token.as_ref(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => MlflowError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            format!(
                "{}; MLflow's client sends MLFLOW_TRACKING_TOKEN so",
                e.error
            ),
        )
        .into_response(),
        Err(e) => {
            MlflowError::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", e.error).into_response()
        }
    }
}

/// The documented patterns of each route's search parameters, from the library that checks them.
pub fn document_patterns(document: &mut serde_json::Value) {
    const BASE: &str = "/api/2.0/mlflow";
    for (path, filter, order) in [
        (
            "/registered-models/search",
            filter::REGISTERED_MODEL_FILTER,
            filter::REGISTERED_MODEL_ORDER,
        ),
        (
            "/model-versions/search",
            filter::MODEL_VERSION_FILTER,
            filter::MODEL_VERSION_ORDER,
        ),
    ] {
        let Some(parameters) = document
            .pointer_mut(&format!(
                "/paths/{}/get/parameters",
                pointer(&format!("{BASE}{path}"))
            ))
            .and_then(serde_json::Value::as_array_mut)
        else {
            continue;
        };
        for parameter in parameters {
            let schema = match parameter["name"].as_str() {
                Some("filter") => Some((&mut parameter["schema"], filter)),
                Some("order_by") => Some((&mut parameter["schema"]["items"], order)),
                Some("page_token") => Some((&mut parameter["schema"], filter::PAGE_TOKEN)),
                _ => None,
            };
            if let Some((schema, pattern)) = schema {
                schema["pattern"] = json!(pattern);
            }
        }
    }
    if let Some(maximum) = document.pointer_mut(&format!(
        "/paths/{}/get/parameters",
        pointer(&format!("{BASE}/model-versions/search"))
    )) && let Some(parameters) = maximum.as_array_mut()
    {
        for parameter in parameters {
            if parameter["name"] == "max_results" {
                parameter["schema"]["maximum"] = json!(200_000);
            }
        }
    }
    for (schema, filter, order) in [
        (
            "MlflowSearchExperiments",
            filter::EXPERIMENT_FILTER,
            filter::EXPERIMENT_ORDER,
        ),
        ("MlflowSearchRuns", filter::RUN_FILTER, filter::RUN_ORDER),
    ] {
        if let Some(properties) =
            document.pointer_mut(&format!("/components/schemas/{schema}/properties"))
        {
            properties["filter"]["pattern"] = json!(filter);
            properties["order_by"]["items"]["pattern"] = json!(order);
            properties["page_token"]["pattern"] = json!(filter::PAGE_TOKEN);
        }
    }
}

/// A JSON pointer segment for an OpenAPI path.
fn pointer(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

/// `GET /api/2.0/mlflow/registered-models/search`: MlflowClient.search_registered_models.
#[utoipa::path(get, path = "/api/2.0/mlflow/registered-models/search", tag = "mlflow",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of registered models", body = MlflowRegisteredModelsPage),
        (status = 400, description = "A filter, ordering, page token or max_results this server does not accept (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody)))]
async fn search_registered_models(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowRegisteredModelsPage> {
    let request = Params::new(query).search()?;
    let page = ml::search_registered_models(&registry(&state), &request).await?;
    Ok(axum::Json(MlflowRegisteredModelsPage {
        registered_models: page.items,
        next_page_token: page.next_page_token,
    }))
}

/// `GET /api/2.0/mlflow/registered-models/get`: MlflowClient.get_registered_model.
#[utoipa::path(get, path = "/api/2.0/mlflow/registered-models/get", tag = "mlflow",
    params(NameQuery),
    responses(
        (status = 200, description = "The model, its aliases and latest version", body = MlflowRegisteredModelBody),
        (status = 400, description = "No name (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody),
        (status = 404, description = "No such model (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn get_registered_model(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowRegisteredModelBody> {
    let params = Params::new(query);
    let name = params.required("name")?;
    Ok(axum::Json(MlflowRegisteredModelBody {
        registered_model: ml::get_registered_model(&registry(&state), name).await?,
    }))
}

/// `GET /api/2.0/mlflow/model-versions/get`: MlflowClient.get_model_version.
#[utoipa::path(get, path = "/api/2.0/mlflow/model-versions/get", tag = "mlflow",
    params(VersionQuery),
    responses(
        (status = 200, description = "The version", body = MlflowModelVersionBody),
        (status = 400, description = "No name, or a version that is not a number (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody),
        (status = 404, description = "No such version (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn get_model_version(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowModelVersionBody> {
    let params = Params::new(query);
    let (name, version) = (params.required("name")?, params.required("version")?);
    Ok(axum::Json(MlflowModelVersionBody {
        model_version: ml::get_model_version(&registry(&state), name, version).await?,
    }))
}

/// `GET /api/2.0/mlflow/model-versions/search`: MlflowClient.search_model_versions.
#[utoipa::path(get, path = "/api/2.0/mlflow/model-versions/search", tag = "mlflow",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of versions", body = MlflowModelVersionsPage),
        (status = 400, description = "A filter, ordering, page token or max_results this server does not accept (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody)))]
async fn search_model_versions(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowModelVersionsPage> {
    let request = Params::new(query).search()?;
    let page = ml::search_model_versions(&registry(&state), &request).await?;
    Ok(axum::Json(MlflowModelVersionsPage {
        model_versions: page.items,
        next_page_token: page.next_page_token,
    }))
}

/// `GET /api/2.0/mlflow/model-versions/get-download-uri`: where MLflow's client downloads a version
/// from (`mlflow-artifacts:/models/NAME/VERSION`, served below `/api/2.0/mlflow-artifacts/artifacts`).
#[utoipa::path(get, path = "/api/2.0/mlflow/model-versions/get-download-uri", tag = "mlflow",
    params(VersionQuery),
    responses(
        (status = 200, description = "The version's artifact URI", body = MlflowDownloadUriBody),
        (status = 400, description = "No name, or a version that is not a number (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody),
        (status = 404, description = "No such version (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn get_download_uri(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowDownloadUriBody> {
    let params = Params::new(query);
    let (name, version) = (params.required("name")?, params.required("version")?);
    Ok(axum::Json(MlflowDownloadUriBody {
        artifact_uri: ml::model_version_download_uri(&registry(&state), name, version).await?,
    }))
}

/// `GET /api/2.0/mlflow/registered-models/alias`: MlflowClient.get_model_version_by_alias.
#[utoipa::path(get, path = "/api/2.0/mlflow/registered-models/alias", tag = "mlflow",
    params(AliasQuery),
    responses(
        (status = 200, description = "The version the alias points at", body = MlflowModelVersionBody),
        (status = 400, description = "No name or alias (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody),
        (status = 404, description = "No such model or alias (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn get_alias(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowModelVersionBody> {
    let params = Params::new(query);
    let (name, alias) = (params.required("name")?, params.required("alias")?);
    Ok(axum::Json(MlflowModelVersionBody {
        model_version: ml::model_version_by_alias(&registry(&state), name, alias).await?,
    }))
}

/// `POST /api/2.0/mlflow/registered-models/alias`: MlflowClient.set_registered_model_alias. Moving
/// `champion` is a promotion by hand: recorded as a manual decision, announced by NOTIFY, and the
/// classifier serves the version within a poll.
#[utoipa::path(post, path = "/api/2.0/mlflow/registered-models/alias", tag = "mlflow",
    security(("admin_token" = [])),
    request_body = MlflowSetAlias,
    responses(
        (status = 200, description = "The alias moved", body = MlflowEmptyBody),
        (status = 400, description = "Not a valid request: a missing field, an invalid alias or version, a body that is not JSON (INVALID_PARAMETER_VALUE, BAD_REQUEST)", body = MlflowErrorBody),
        (status = 401, description = "No admin token (UNAUTHENTICATED)", body = MlflowErrorBody),
        (status = 403, description = "A wrong admin token, or ADMIN_TOKEN is not set (PERMISSION_DENIED)", body = MlflowErrorBody),
        (status = 404, description = "No such model or version (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody),
        (status = 409, description = "The champion moved meanwhile; try again (RESOURCE_CONFLICT)", body = MlflowErrorBody),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES (BAD_REQUEST)", body = MlflowErrorBody),
        (status = 415, description = "The body is not JSON (BAD_REQUEST)", body = MlflowErrorBody)))]
async fn set_alias(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Answer<MlflowEmptyBody> {
    let request: MlflowSetAlias = json_body(&headers, body)?;
    let actor = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown client");
    let previous = ml::set_alias(
        &registry(&state),
        &request.name,
        &request.alias,
        &request.version,
        actor,
    )
    .await?;
    tracing::info!(model = %request.name, alias = %request.alias, version = %request.version,
        previous = ?previous, "alias moved through the MLflow API");
    Ok(axum::Json(MlflowEmptyBody {}))
}

/// `DELETE /api/2.0/mlflow/registered-models/alias`: MlflowClient.delete_registered_model_alias (the
/// JSON body MLflow's client sends; `name` and `alias` query parameters are read when there is none).
#[utoipa::path(delete, path = "/api/2.0/mlflow/registered-models/alias", tag = "mlflow",
    security(("admin_token" = [])),
    request_body = MlflowDeleteAlias,
    responses(
        (status = 200, description = "The alias is gone", body = MlflowEmptyBody),
        (status = 400, description = "Not a valid request (INVALID_PARAMETER_VALUE, BAD_REQUEST)", body = MlflowErrorBody),
        (status = 401, description = "No admin token (UNAUTHENTICATED)", body = MlflowErrorBody),
        (status = 403, description = "A wrong admin token, or ADMIN_TOKEN is not set (PERMISSION_DENIED)", body = MlflowErrorBody),
        (status = 404, description = "No such model or alias (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody),
        (status = 409, description = "The champion cannot be deleted, only moved (RESOURCE_CONFLICT)", body = MlflowErrorBody),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES (BAD_REQUEST)", body = MlflowErrorBody),
        (status = 415, description = "The body is not JSON (BAD_REQUEST)", body = MlflowErrorBody)))]
async fn delete_alias(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Answer<MlflowEmptyBody> {
    let params = Params::new(query);
    let empty = body.as_ref().is_ok_and(|b| b.is_empty());
    let request: MlflowDeleteAlias = match (empty, params.one("name"), params.one("alias")) {
        (true, Some(name), Some(alias)) => MlflowDeleteAlias {
            name: name.to_owned(),
            alias: alias.to_owned(),
        },
        _ => json_body(&headers, body)?,
    };
    ml::delete_alias(&registry(&state), &request.name, &request.alias).await?;
    tracing::info!(model = %request.name, alias = %request.alias, "alias deleted through the MLflow API");
    Ok(axum::Json(MlflowEmptyBody {}))
}

/// `GET /api/2.0/mlflow/experiments/get-by-name`: MlflowClient.get_experiment_by_name (404 becomes
/// `None` in the client).
#[utoipa::path(get, path = "/api/2.0/mlflow/experiments/get-by-name", tag = "mlflow",
    params(ExperimentNameQuery),
    responses(
        (status = 200, description = "The experiment", body = MlflowExperimentBody),
        (status = 400, description = "No experiment_name (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody),
        (status = 404, description = "No runs were logged under that name (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn get_experiment_by_name(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowExperimentBody> {
    let params = Params::new(query);
    let name = params.required("experiment_name")?;
    Ok(axum::Json(MlflowExperimentBody {
        experiment: ml::experiment_by_name(&registry(&state), name).await?,
    }))
}

/// `GET /api/2.0/mlflow/experiments/get`: MlflowClient.get_experiment.
#[utoipa::path(get, path = "/api/2.0/mlflow/experiments/get", tag = "mlflow",
    params(ExperimentIdQuery),
    responses(
        (status = 200, description = "The experiment", body = MlflowExperimentBody),
        (status = 400, description = "No experiment_id (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody),
        (status = 404, description = "No such experiment (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn get_experiment(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowExperimentBody> {
    let params = Params::new(query);
    let id = params.required("experiment_id")?;
    Ok(axum::Json(MlflowExperimentBody {
        experiment: ml::experiment(&registry(&state), id).await?,
    }))
}

/// `POST /api/2.0/mlflow/experiments/search`: MlflowClient.search_experiments (a read: no token).
#[utoipa::path(post, path = "/api/2.0/mlflow/experiments/search", tag = "mlflow",
    request_body = MlflowSearchExperiments,
    responses(
        (status = 200, description = "A page of experiments", body = MlflowExperimentsPage),
        (status = 400, description = "Not a valid search (INVALID_PARAMETER_VALUE, BAD_REQUEST)", body = MlflowErrorBody),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES (BAD_REQUEST)", body = MlflowErrorBody),
        (status = 415, description = "The body is not JSON (BAD_REQUEST)", body = MlflowErrorBody)))]
async fn search_experiments(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Answer<MlflowExperimentsPage> {
    let body: MlflowSearchExperiments = json_body(&headers, body)?;
    let request = SearchRequest {
        filter: body.filter,
        max_results: whole(body.max_results)?,
        order_by: body.order_by,
        page_token: body.page_token,
    };
    let mut page = ml::search_experiments(&registry(&state), &request).await?;
    if body.view_type == Some(MlflowViewType::DeletedOnly) {
        // Nothing is ever deleted here.
        page.items.clear();
        page.next_page_token = None;
    }
    Ok(axum::Json(MlflowExperimentsPage {
        experiments: page.items,
        next_page_token: page.next_page_token,
    }))
}

fn run_id(params: &Params) -> Result<&str, MlflowError> {
    params
        .one("run_id")
        .or_else(|| params.one("run_uuid"))
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'run_id'"))
}

/// `GET /api/2.0/mlflow/runs/get`: MlflowClient.get_run (params, tags, and each metric's value at its
/// largest step).
#[utoipa::path(get, path = "/api/2.0/mlflow/runs/get", tag = "mlflow",
    params(RunQuery),
    responses(
        (status = 200, description = "The run", body = MlflowRunBody),
        (status = 400, description = "No run_id (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody),
        (status = 404, description = "No such run (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn get_run(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowRunBody> {
    let params = Params::new(query);
    Ok(axum::Json(MlflowRunBody {
        run: ml::get_run(&registry(&state), run_id(&params)?).await?,
    }))
}

/// `POST /api/2.0/mlflow/runs/search`: MlflowClient.search_runs (a read: no token).
#[utoipa::path(post, path = "/api/2.0/mlflow/runs/search", tag = "mlflow",
    request_body = MlflowSearchRuns,
    responses(
        (status = 200, description = "A page of runs", body = MlflowRunsPage),
        (status = 400, description = "Not a valid search (INVALID_PARAMETER_VALUE, BAD_REQUEST)", body = MlflowErrorBody),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES (BAD_REQUEST)", body = MlflowErrorBody),
        (status = 415, description = "The body is not JSON (BAD_REQUEST)", body = MlflowErrorBody)))]
async fn search_runs(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Answer<MlflowRunsPage> {
    let body: MlflowSearchRuns = json_body(&headers, body)?;
    let request = SearchRequest {
        filter: body.filter,
        max_results: whole(body.max_results)?,
        order_by: body.order_by,
        page_token: body.page_token,
    };
    let mut page = ml::search_runs(&registry(&state), &body.experiment_ids, &request).await?;
    if body.run_view_type == Some(MlflowViewType::DeletedOnly) {
        page.items.clear();
        page.next_page_token = None;
    }
    Ok(axum::Json(MlflowRunsPage {
        runs: page.items,
        next_page_token: page.next_page_token,
    }))
}

/// `GET /api/2.0/mlflow/metrics/get-history`: MlflowClient.get_metric_history (every step's value).
#[utoipa::path(get, path = "/api/2.0/mlflow/metrics/get-history", tag = "mlflow",
    params(HistoryQuery),
    responses(
        (status = 200, description = "The metric's values by step (empty when never logged)", body = MlflowMetricHistory),
        (status = 400, description = "No run_id or metric_key, or a bad page (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody),
        (status = 404, description = "No such run (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn metric_history(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowMetricHistory> {
    let params = Params::new(query);
    let key = params.required("metric_key")?;
    let request = SearchRequest {
        max_results: params.integer("max_results")?,
        page_token: params.one("page_token").map(str::to_owned),
        ..SearchRequest::default()
    };
    let page = ml::metric_history(&registry(&state), run_id(&params)?, key, &request).await?;
    Ok(axum::Json(MlflowMetricHistory {
        metrics: page.items,
        next_page_token: page.next_page_token,
    }))
}

/// `GET /api/2.0/mlflow-artifacts/artifacts?path=models/NAME/VERSION`: the files of a version's folder
/// (`model.json`, and `profile.json` when it has one).
#[utoipa::path(get, path = "/api/2.0/mlflow-artifacts/artifacts", tag = "mlflow",
    params(ArtifactsQuery),
    responses(
        (status = 200, description = "The folder's files (none for a file's path)", body = MlflowArtifactList),
        (status = 404, description = "No such folder (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn list_artifacts(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowArtifactList> {
    let params = Params::new(query);
    let path = params.one("path").unwrap_or_default();
    Ok(axum::Json(MlflowArtifactList {
        files: ml::list_artifacts(&registry(&state), path).await?,
    }))
}

/// `GET /api/2.0/mlflow-artifacts/artifacts/models/NAME/VERSION/FILE`: a file of a version, read from
/// the object store and checked against the SHA-256 recorded at registration before a byte is sent (a
/// mismatch is a 500 `DATA_LOSS`, logged).
#[utoipa::path(get, path = "/api/2.0/mlflow-artifacts/artifacts/{path}", tag = "mlflow",
    params(("path" = String, Path, description = "models/NAME/VERSION/model.json or …/profile.json")),
    responses(
        (status = 200, description = "The file's bytes", content_type = "application/octet-stream"),
        (status = 404, description = "No such file (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn download_artifact(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<impl IntoResponse, MlflowError> {
    let bytes = ml::read_artifact(&registry(&state), &path).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes))
}
