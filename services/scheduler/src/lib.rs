//! The scheduler service: runs the platform's cron jobs (generate, predict, dbt, metrics, drift, retraining).

use axum::extract::State;
use churn_service::config::SCHEDULER_PORT;
use churn_service::health::{Critical, Readiness, infra_checks};
use churn_service::{Application, Env, Infra, Limits, ServiceConfig, finish_router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The variable naming this service's port.
pub const PORT_VAR: &str = "SCHEDULER_PORT";

/// Reads the service's configuration; an invalid variable is an error naming it.
pub fn config_from_env(env: &Env) -> Result<ServiceConfig, churn_service::ConfigError> {
    ServiceConfig::from_env(env, PORT_VAR, SCHEDULER_PORT)
}

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub infra: Infra,
}

#[derive(OpenApi)]
#[openapi(info(
    title = "scheduler",
    description = "The scheduler service: runs the platform's cron jobs (generate, predict, dbt, metrics, drift, retraining)."
))]
struct ApiDoc;

/// Connects to the database and object store and binds the listener.
pub async fn build(config: ServiceConfig) -> anyhow::Result<Application> {
    let infra = Infra::start(&config.common).await?;
    let state = AppState { infra };
    let limits = config.common.limits;
    Application::bind(&config, PORT_VAR, router(state, limits)).await
}

/// The service's routes with the shared middleware.
pub fn router(state: AppState, limits: Limits) -> (axum::Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(ready));
    finish_router(api, state, limits)
}

/// `GET /ready`: the database and object store answer.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Ready (or degraded but serving)", body = Readiness),
    (status = 503, description = "Not ready", body = Readiness)))]
async fn ready(State(state): State<AppState>) -> Readiness {
    Readiness::from_checks(
        infra_checks(
            &state.infra,
            Critical {
                database: true,
                object_store: true,
            },
        )
        .await,
    )
}
