//! Artifacts: a version's folder (`model.json`, `profile.json`) listed and downloaded, each file checked
//! against its recorded SHA-256 before a byte is sent.

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use churn_registry::mlflow::{self as ml, FileInfo};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Answer, MlflowErrorBody};
use crate::params::Params;
use crate::{MlflowError, MlflowState};

/// The artifact routes.
pub fn routes() -> OpenApiRouter<MlflowState> {
    OpenApiRouter::new()
        .routes(routes!(list_artifacts))
        // A catch-all path cannot be stated in OpenAPI: the document names it `{path}` (MlflowDoc).
        .route(
            "/api/2.0/mlflow-artifacts/artifacts/{*path}",
            axum::routing::get(download_artifact),
        )
}

#[derive(Debug, Serialize, ToSchema)]
struct MlflowArtifactList {
    files: Vec<FileInfo>,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ArtifactsQuery {
    /// A folder: `models/NAME/VERSION` (MLflow's client sends the path of the version's `source`).
    path: Option<String>,
}

/// `GET /api/2.0/mlflow-artifacts/artifacts?path=models/NAME/VERSION`: the files of a version's folder
/// (`model.json`, and `profile.json` when it has one).
#[utoipa::path(get, path = "/api/2.0/mlflow-artifacts/artifacts", tag = "mlflow",
    params(ArtifactsQuery),
    responses(
        (status = 200, description = "The folder's files (none for a file's path)", body = MlflowArtifactList),
        (status = 404, description = "No such folder (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody)))]
async fn list_artifacts(
    State(state): State<MlflowState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowArtifactList> {
    let params = Params::new(query);
    let path = params.one("path").unwrap_or_default();
    Ok(axum::Json(MlflowArtifactList {
        files: ml::list_artifacts(&state.registry, path).await?,
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
pub(crate) async fn download_artifact(
    State(state): State<MlflowState>,
    Path(path): Path<String>,
) -> Result<impl IntoResponse, MlflowError> {
    let bytes = ml::read_artifact(&state.registry, &path).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes))
}
