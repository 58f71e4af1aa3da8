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

use crate::{MlflowError, MlflowErrorBody, MlflowState};

#[derive(OpenApi)]
#[openapi(
    paths(artifacts::download_artifact),
    components(schemas(MlflowErrorBody)),
    tags((name = "mlflow", description = "MLflow-compatible REST subset: MLflow's clients read the \
        registry (models, versions, aliases, experiments, runs, metric histories) and download \
        `models:/NAME@ALIAS`; moving an alias needs `Authorization: Bearer $ADMIN_TOKEN` \
        (`MLFLOW_TRACKING_TOKEN`). Errors are MLflow's `{error_code, message}`."))
)]
struct MlflowDoc;

/// Every MLflow route, with its own state, for a router of any state `S` to merge: reads open, alias
/// changes behind the admin token.
pub fn routes<S>(state: MlflowState) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::with_openapi(MlflowDoc::openapi())
        .merge(registered_models::routes(&state))
        .merge(model_versions::routes())
        .merge(experiments::routes())
        .merge(runs::routes())
        .merge(artifacts::routes())
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
