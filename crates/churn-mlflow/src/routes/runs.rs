//! Runs: get, search, and a metric's history.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use churn_registry::mlflow::filter::SearchRequest;
use churn_registry::mlflow::{self as ml, Metric, Run};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Answer, MlflowErrorBody};
use crate::params::{Params, json_body, whole};
use crate::routes::MlflowViewType;
use crate::{MlflowError, MlflowState};

/// The run routes.
pub fn routes() -> OpenApiRouter<MlflowState> {
    OpenApiRouter::new()
        .routes(routes!(get_run))
        .routes(routes!(search_runs))
        .routes(routes!(metric_history))
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
    State(state): State<MlflowState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowRunBody> {
    let params = Params::new(query);
    Ok(axum::Json(MlflowRunBody {
        run: ml::get_run(&state.registry, run_id(&params)?).await?,
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
    State(state): State<MlflowState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer<MlflowRunsPage> {
    let body: MlflowSearchRuns = json_body(&headers, body)?;
    let request = SearchRequest {
        filter: body.filter,
        max_results: whole(body.max_results)?,
        order_by: body.order_by,
        page_token: body.page_token,
    };
    let mut page = ml::search_runs(&state.registry, &body.experiment_ids, &request).await?;
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
    State(state): State<MlflowState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowMetricHistory> {
    let params = Params::new(query);
    let key = params.required("metric_key")?;
    let request = SearchRequest {
        max_results: params.integer("max_results")?,
        page_token: params.one("page_token").map(str::to_owned),
        ..SearchRequest::default()
    };
    let page = ml::metric_history(&state.registry, run_id(&params)?, key, &request).await?;
    Ok(axum::Json(MlflowMetricHistory {
        metrics: page.items,
        next_page_token: page.next_page_token,
    }))
}
