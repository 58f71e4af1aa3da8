//! The scheduler's HTTP routes, one resource a module; this one merges their routers under the API's
//! document and mounts the MLflow-compatible API and the console.

mod console;
mod dbt_docs;
mod error;
mod events;
mod health;
mod ingest;
mod jobs;
mod runs;

use churn_service::{Limits, finish_router_with};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

pub(crate) use error::Error;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "scheduler",
        description = "The platform's control plane: the jobs (generate, dbt, metrics, drift, retrain, \
            ingest) on their schedules, their runs, and triggers. Every run is a row of ops.job_runs; a job \
            runs at most once at a time across scheduler replicas. Mutating routes need \
            `Authorization: Bearer $ADMIN_TOKEN` (401 without it, 403 with a wrong one or when the \
            service has no ADMIN_TOKEN)."
    ),
    components(schemas(runs::StatusFilter, ingest::IngestRequest)),
    tags((name = "jobs"), (name = "ingest"), (name = "operations"), (name = "mlflow"))
)]
struct ApiDoc;

/// The documented routes (mutating ones behind the admin layer, which runs before any body is read),
/// the MLflow-compatible API and the console's pages.
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(jobs::router(state))
        .merge(runs::router())
        .merge(ingest::router(state))
        .merge(events::router(state))
        .merge(dbt_docs::router())
        .merge(health::router())
        .merge(crate::mlflow::routes(state))
        .merge(console::router())
}

/// The service's whole router.
pub fn router(state: AppState, limits: Limits) -> (axum::Router, utoipa::openapi::OpenApi) {
    finish_router_with(
        routes(&state),
        state,
        limits,
        crate::mlflow::document_patterns,
    )
}
