//! The scheduler's HTTP routes, one resource a module; this one merges their routers under the API's
//! document and mounts the MLflow-compatible API and the console.

mod audit;
mod console;
mod dbt_docs;
mod error;
mod events;
mod health;
mod ingest;
mod jobs;
mod runs;

use axum::middleware;
use churn_service::auth::{self, Need};
use churn_service::openapi::require_security;
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
            `Authorization: Bearer $ADMIN_TOKEN` (401 without it, 403 with a wrong one, a narrower one, \
            or when the service has no ADMIN_TOKEN); each manual action is recorded in the audit log \
            (`GET /audit`) with its actor (the token's scope, or the name sent in `X-Actor`). MLflow \
            alias moves take REGISTRY_TOKEN (or ADMIN_TOKEN). When READ_TOKEN is set, every read (the \
            console, jobs, runs, audit, ingested files, dbt docs, MLflow reads and artifact downloads) \
            needs READ_TOKEN or a stronger token, as a bearer token or as the password of HTTP Basic \
            (any user name, recorded as the actor); 401 otherwise. `/health`, `/ready`, `/metrics` and \
            this document stay open."
    ),
    components(schemas(runs::StatusFilter, ingest::IngestRequest)),
    tags((name = "jobs"), (name = "ingest"), (name = "operations"), (name = "mlflow"))
)]
struct ApiDoc;

/// The documented routes (mutating ones behind the admin layer, reads behind the read layer, both
/// running before any body is read), the MLflow-compatible API and the console's pages.
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let reads = OpenApiRouter::new()
        .merge(jobs::read_router())
        .merge(runs::router())
        .merge(audit::router())
        .merge(ingest::read_router())
        .merge(dbt_docs::router())
        .merge(console::router())
        .route_layer(middleware::from_fn_with_state(
            (state.tokens.clone(), Need::Read),
            auth::require,
        ));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(reads)
        .merge(jobs::admin_router(state))
        .merge(ingest::router(state))
        .merge(events::router(state))
        .merge(health::router())
        .merge(crate::mlflow::routes(state))
}

/// The service's whole router.
pub fn router(state: AppState, limits: Limits) -> (axum::Router, utoipa::openapi::OpenApi) {
    let guarded_reads = state.tokens.read.is_some();
    finish_router_with(routes(&state), state, limits, move |document| {
        crate::mlflow::document_patterns(document);
        if guarded_reads {
            document_read_security(document);
        }
    })
}

/// States the read guard on the operations it covers, when READ_TOKEN is set.
fn document_read_security(document: &mut serde_json::Value) {
    let ours = |path: &str| {
        ["/jobs", "/runs/", "/audit", "/ingest/files/", "/dbt/docs/"]
            .iter()
            .any(|prefix| path.starts_with(prefix))
    };
    require_security(
        document,
        "get",
        ours,
        &["read_token", "read_basic", "admin_token"],
    );
    let mlflow = |path: &str| path.starts_with("/api/2.0/mlflow");
    for method in ["get", "post"] {
        require_security(
            document,
            method,
            mlflow,
            &["read_token", "read_basic", "registry_token", "admin_token"],
        );
    }
}
