//! Model versions: get, search, and where MLflow's client downloads one from.

use axum::extract::{RawQuery, State};
use churn_registry::mlflow::{self as ml, ModelVersion};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::MlflowState;
use crate::error::{Answer, MlflowErrorBody};
use crate::params::Params;
use crate::routes::SearchQuery;

/// The model-version routes.
pub fn routes() -> OpenApiRouter<MlflowState> {
    OpenApiRouter::new()
        .routes(routes!(get_model_version))
        .routes(routes!(search_model_versions))
        .routes(routes!(get_download_uri))
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MlflowModelVersionBody {
    pub(crate) model_version: ModelVersion,
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

/// `GET /api/2.0/mlflow/model-versions/get`: MlflowClient.get_model_version.
#[utoipa::path(get, path = "/api/2.0/mlflow/model-versions/get", tag = "mlflow",
    params(VersionQuery),
    responses(
        (status = 200, description = "The version", body = MlflowModelVersionBody),
        (status = 400, description = "No name, or a version that is not a number (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody),
        (status = 404, description = "No such version (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn get_model_version(
    State(state): State<MlflowState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowModelVersionBody> {
    let params = Params::new(query);
    let (name, version) = (params.required("name")?, params.required("version")?);
    Ok(axum::Json(MlflowModelVersionBody {
        model_version: ml::get_model_version(&state.registry, name, version).await?,
    }))
}

/// `GET /api/2.0/mlflow/model-versions/search`: MlflowClient.search_model_versions.
#[utoipa::path(get, path = "/api/2.0/mlflow/model-versions/search", tag = "mlflow",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of versions", body = MlflowModelVersionsPage),
        (status = 400, description = "A filter, ordering, page token or max_results this server does not accept (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody)))]
async fn search_model_versions(
    State(state): State<MlflowState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowModelVersionsPage> {
    let request = Params::new(query).search()?;
    let page = ml::search_model_versions(&state.registry, &request).await?;
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
    State(state): State<MlflowState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowDownloadUriBody> {
    let params = Params::new(query);
    let (name, version) = (params.required("name")?, params.required("version")?);
    Ok(axum::Json(MlflowDownloadUriBody {
        artifact_uri: ml::model_version_download_uri(&state.registry, name, version).await?,
    }))
}
