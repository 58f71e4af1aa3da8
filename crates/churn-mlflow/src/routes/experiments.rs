//! Experiments (a distinct experiment name of the registry's runs): get by name or id, search.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use churn_registry::mlflow::filter::SearchRequest;
use churn_registry::mlflow::{self as ml, Experiment};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::MlflowState;
use crate::error::{Answer, MlflowErrorBody};
use crate::params::{Params, json_body, whole};
use crate::routes::MlflowViewType;

/// The experiment routes.
pub fn routes() -> OpenApiRouter<MlflowState> {
    OpenApiRouter::new()
        .routes(routes!(get_experiment_by_name))
        .routes(routes!(get_experiment))
        .routes(routes!(search_experiments))
}

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

/// `GET /api/2.0/mlflow/experiments/get-by-name`: MlflowClient.get_experiment_by_name (404 becomes
/// `None` in the client).
#[utoipa::path(get, path = "/api/2.0/mlflow/experiments/get-by-name", tag = "mlflow",
    params(ExperimentNameQuery),
    responses(
        (status = 200, description = "The experiment", body = MlflowExperimentBody),
        (status = 400, description = "No experiment_name (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody),
        (status = 404, description = "No runs were logged under that name (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn get_experiment_by_name(
    State(state): State<MlflowState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowExperimentBody> {
    let params = Params::new(query);
    let name = params.required("experiment_name")?;
    Ok(axum::Json(MlflowExperimentBody {
        experiment: ml::experiment_by_name(&state.registry, name).await?,
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
    State(state): State<MlflowState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowExperimentBody> {
    let params = Params::new(query);
    let id = params.required("experiment_id")?;
    Ok(axum::Json(MlflowExperimentBody {
        experiment: ml::experiment(&state.registry, id).await?,
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
    State(state): State<MlflowState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer<MlflowExperimentsPage> {
    let body: MlflowSearchExperiments = json_body(&headers, body)?;
    let request = SearchRequest {
        filter: body.filter,
        max_results: whole(body.max_results)?,
        order_by: body.order_by,
        page_token: body.page_token,
    };
    let mut page = ml::search_experiments(&state.registry, &request).await?;
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
