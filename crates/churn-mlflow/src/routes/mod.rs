//! The MLflow routes, one resource a module, merged into one router with MLflow's answer to an
//! endpoint this subset does not serve.

pub mod artifacts;
pub mod experiments;
pub mod model_versions;
pub mod registered_models;
pub mod runs;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use churn_service::auth::{Need, Tokens};

use crate::{MlflowError, MlflowErrorBody, MlflowState};

#[derive(OpenApi)]
#[openapi(
    paths(artifacts::download_artifact),
    components(schemas(MlflowErrorBody)),
    tags((name = "mlflow", description = "MLflow-compatible REST subset: MLflow's clients read the \
        registry (models, versions, aliases, experiments, runs, metric histories) and download \
        `models:/NAME@ALIAS`; moving an alias needs `Authorization: Bearer $REGISTRY_TOKEN` (or \
        ADMIN_TOKEN; MLflow's client sends `MLFLOW_TRACKING_TOKEN`), and when READ_TOKEN is set every \
        read needs READ_TOKEN, REGISTRY_TOKEN or ADMIN_TOKEN (bearer, or HTTP Basic's password with \
        `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`). Errors are MLflow's `{error_code, message}`."))
)]
struct MlflowDoc;

/// Every MLflow route, with its own state, for a router of any state `S` to merge: reads behind
/// READ_TOKEN when it is set, alias changes behind REGISTRY_TOKEN (or ADMIN_TOKEN).
pub fn routes<S>(state: MlflowState) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let reads = OpenApiRouter::new()
        .merge(registered_models::read_routes())
        .merge(model_versions::routes())
        .merge(experiments::routes())
        .merge(runs::routes())
        .merge(artifacts::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            (state.tokens.clone(), Need::RegistryRead),
            require,
        ));
    OpenApiRouter::with_openapi(MlflowDoc::openapi())
        .merge(reads)
        .merge(registered_models::write_routes(&state))
        // MLflow's answer to an endpoint this subset does not serve (the client names it in its error).
        .route(
            "/api/2.0/mlflow/{*rest}",
            axum::routing::any(endpoint_not_found),
        )
        .with_state(state)
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

/// A scoped-token check in MLflow's shape: 401 `UNAUTHENTICATED` without a token (and, for a read, with
/// a wrong one), 403 `PERMISSION_DENIED` with a token of a narrower scope, a wrong token on a write, or
/// when no token that could pass is set. The caller's actor is left in the request's extensions.
pub(crate) async fn require(
    State((tokens, need)): State<(Tokens, Need)>,
    mut request: Request,
    next: Next,
) -> Response {
    match churn_service::auth::check(&tokens, need, request.headers()) {
        Ok(actor) => {
            if let Some(actor) = actor {
                request.extensions_mut().insert(actor);
            }
            next.run(request).await
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            let mut response = MlflowError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                format!(
                    "{}; MLflow's client sends MLFLOW_TRACKING_TOKEN so",
                    e.error
                ),
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(churn_service::auth::BASIC_CHALLENGE),
            );
            response
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            MlflowError::invalid(e.error).into_response()
        }
        Err(e) => {
            MlflowError::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", e.error).into_response()
        }
    }
}

/// Query of `registered-models/search` and `model-versions/search`. The patterns of `filter`,
/// `order_by` and `page_token` are set per route from `churn_registry::mlflow::filter`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct SearchQuery {
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

/// Which runs or experiments a search covers (this registry deletes none).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum MlflowViewType {
    ActiveOnly,
    DeletedOnly,
    All,
}
