//! Registered models and their aliases: search, get, and moving or deleting an alias (behind
//! REGISTRY_TOKEN or ADMIN_TOKEN, recorded in the audit log; moving `champion` is a promotion by hand).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use churn_registry::mlflow::{self as ml, RegisteredModel};
use churn_service::auth::{Actor, Need};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::MlflowState;
use crate::error::{Answer, MlflowErrorBody};
use crate::params::{Params, json_body};
use crate::routes::SearchQuery;
use crate::routes::model_versions::MlflowModelVersionBody;

/// The registered-model reads (guarded by the caller's read layer).
pub fn read_routes() -> OpenApiRouter<MlflowState> {
    OpenApiRouter::new()
        .routes(routes!(search_registered_models))
        .routes(routes!(get_registered_model))
        .routes(routes!(get_alias))
}

/// Alias changes, behind REGISTRY_TOKEN or ADMIN_TOKEN (checked before any body is read, answered in
/// MLflow's error shape).
pub fn write_routes(state: &MlflowState) -> OpenApiRouter<MlflowState> {
    OpenApiRouter::new()
        .routes(routes!(set_alias, delete_alias))
        .route_layer(axum::middleware::from_fn_with_state(
            (state.tokens.clone(), Need::RegistryWrite),
            super::require,
        ))
}

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

/// MLflow answers alias changes with an empty object.
#[derive(Debug, Serialize, ToSchema)]
struct MlflowEmptyBody {}

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
struct AliasQuery {
    /// The registered model.
    name: String,
    /// The alias, e.g. `champion`.
    alias: String,
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

/// `GET /api/2.0/mlflow/registered-models/search`: MlflowClient.search_registered_models.
#[utoipa::path(get, path = "/api/2.0/mlflow/registered-models/search", tag = "mlflow",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of registered models", body = MlflowRegisteredModelsPage),
        (status = 400, description = "A filter, ordering, page token or max_results this server does not accept (INVALID_PARAMETER_VALUE)", body = MlflowErrorBody)))]
async fn search_registered_models(
    State(state): State<MlflowState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowRegisteredModelsPage> {
    let request = Params::new(query).search()?;
    let page = ml::search_registered_models(&state.registry, &request).await?;
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
    State(state): State<MlflowState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowRegisteredModelBody> {
    let params = Params::new(query);
    let name = params.required("name")?;
    Ok(axum::Json(MlflowRegisteredModelBody {
        registered_model: ml::get_registered_model(&state.registry, name).await?,
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
    State(state): State<MlflowState>,
    RawQuery(query): RawQuery,
) -> Answer<MlflowModelVersionBody> {
    let params = Params::new(query);
    let (name, alias) = (params.required("name")?, params.required("alias")?);
    Ok(axum::Json(MlflowModelVersionBody {
        model_version: ml::model_version_by_alias(&state.registry, name, alias).await?,
    }))
}

/// `POST /api/2.0/mlflow/registered-models/alias`: MlflowClient.set_registered_model_alias. Moving
/// `champion` is a promotion by hand: recorded as a manual decision, announced by NOTIFY, and the
/// classifier serves the version within a poll.
#[utoipa::path(post, path = "/api/2.0/mlflow/registered-models/alias", tag = "mlflow",
    security(("registry_token" = []), ("admin_token" = [])),
    request_body = MlflowSetAlias,
    responses(
        (status = 200, description = "The alias moved", body = MlflowEmptyBody),
        (status = 400, description = "Not a valid request: a missing field, an invalid alias or version, a body that is not JSON (INVALID_PARAMETER_VALUE, BAD_REQUEST)", body = MlflowErrorBody),
        (status = 401, description = "No token (UNAUTHENTICATED)", body = MlflowErrorBody),
        (status = 403, description = "A wrong token, READ_TOKEN, or neither REGISTRY_TOKEN nor ADMIN_TOKEN is set (PERMISSION_DENIED)", body = MlflowErrorBody),
        (status = 404, description = "No such model or version (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody),
        (status = 409, description = "The champion moved meanwhile; try again (RESOURCE_CONFLICT)", body = MlflowErrorBody),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES (BAD_REQUEST)", body = MlflowErrorBody),
        (status = 415, description = "The body is not JSON (BAD_REQUEST)", body = MlflowErrorBody)))]
async fn set_alias(
    State(state): State<MlflowState>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer<MlflowEmptyBody> {
    let request: MlflowSetAlias = json_body(&headers, body)?;
    let previous = ml::set_alias(
        &state.registry,
        &request.name,
        &request.alias,
        &request.version,
        &actor,
    )
    .await?;
    tracing::info!(model = %request.name, alias = %request.alias, version = %request.version,
        previous = ?previous, actor = %actor.name, "alias moved through the MLflow API");
    Ok(axum::Json(MlflowEmptyBody {}))
}

/// `DELETE /api/2.0/mlflow/registered-models/alias`: MlflowClient.delete_registered_model_alias (the
/// JSON body MLflow's client sends; `name` and `alias` query parameters are read when there is none).
#[utoipa::path(delete, path = "/api/2.0/mlflow/registered-models/alias", tag = "mlflow",
    security(("registry_token" = []), ("admin_token" = [])),
    request_body = MlflowDeleteAlias,
    responses(
        (status = 200, description = "The alias is gone", body = MlflowEmptyBody),
        (status = 400, description = "Not a valid request (INVALID_PARAMETER_VALUE, BAD_REQUEST)", body = MlflowErrorBody),
        (status = 401, description = "No token (UNAUTHENTICATED)", body = MlflowErrorBody),
        (status = 403, description = "A wrong token, READ_TOKEN, or neither REGISTRY_TOKEN nor ADMIN_TOKEN is set (PERMISSION_DENIED)", body = MlflowErrorBody),
        (status = 404, description = "No such model or alias (RESOURCE_DOES_NOT_EXIST)", body = MlflowErrorBody),
        (status = 409, description = "The champion cannot be deleted, only moved (RESOURCE_CONFLICT)", body = MlflowErrorBody),
        (status = 413, description = "The body is larger than MAX_BODY_BYTES (BAD_REQUEST)", body = MlflowErrorBody),
        (status = 415, description = "The body is not JSON (BAD_REQUEST)", body = MlflowErrorBody)))]
async fn delete_alias(
    State(state): State<MlflowState>,
    Extension(actor): Extension<Actor>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
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
    ml::delete_alias(&state.registry, &request.name, &request.alias, &actor).await?;
    tracing::info!(model = %request.name, alias = %request.alias, actor = %actor.name,
        "alias deleted through the MLflow API");
    Ok(axum::Json(MlflowEmptyBody {}))
}
