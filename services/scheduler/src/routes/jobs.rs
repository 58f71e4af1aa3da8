//! The jobs: `GET /jobs` (schedules, switches, last run, next tick), and the admin routes that start a
//! run now, pause a job and resume it (each recorded in the audit log with its actor).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware;
use churn_api::{JobInfo, JobPaused, TriggeredRun};
use churn_jobs::Schedule;
use churn_service::auth::{Actor, Need};
use churn_service::{ApiJson, auth};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Error, runs::run_body};
use crate::AppState;

/// `GET /jobs` (guarded by the caller's read layer).
pub(super) fn read_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_jobs))
}

/// The admin routes, behind ADMIN_TOKEN; each action is written to the audit log with its actor.
pub(super) fn admin_router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(trigger_run))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .route_layer(middleware::from_fn_with_state(
            (state.tokens.clone(), Need::Admin),
            auth::require,
        ))
}

fn schedule_text(schedule: &Schedule) -> String {
    match schedule {
        Schedule::Cron(expr) => expr.clone(),
        Schedule::Continuous => "continuous".to_owned(),
        Schedule::OnDemand => "manual".to_owned(),
    }
}

/// `GET /jobs`: every job with its schedule, switches, last run and next tick.
#[utoipa::path(get, path = "/jobs", tag = "jobs", responses(
    (status = 200, description = "Every job", body = Vec<JobInfo>)))]
async fn list_jobs(State(state): State<AppState>) -> Result<ApiJson<Vec<JobInfo>>, Error> {
    Ok(ApiJson(job_infos(&state).await?))
}

/// Every job with its schedule, switches, last run and next tick (`GET /jobs` and the console's page).
pub(super) async fn job_infos(state: &AppState) -> Result<Vec<JobInfo>, churn_store::Error> {
    let pool = state.runner.pool();
    let latest = churn_store::ops::latest_runs(pool).await?;
    let paused = churn_store::ops::paused_jobs(pool).await?;
    let mut jobs = Vec::new();
    for spec in state.runner.specs() {
        let is_paused = paused.iter().any(|p| p == spec.name);
        let next_run = match (state.ticks.get(spec.name), &state.cron) {
            (Some(id), Some(cron)) if spec.enabled && !is_paused => {
                let mut cron = cron.clone();
                cron.next_tick_for_job(*id).await.ok().flatten()
            }
            _ => None,
        };
        jobs.push(JobInfo {
            name: spec.name.to_owned(),
            schedule: schedule_text(&spec.schedule),
            enabled: spec.enabled,
            paused: is_paused,
            timeout_seconds: spec.timeout.as_secs(),
            retries: spec.retries,
            last_run: latest
                .iter()
                .find(|r| r.job_name == spec.name)
                .cloned()
                .map(run_body),
            next_run,
        });
    }
    Ok(jobs)
}

/// `POST /jobs/{name}/run`: start a run now (202 with its id); 409 while one is running.
#[utoipa::path(post, path = "/jobs/{name}/run", tag = "jobs", security(("admin_token" = [])),
    params(("name" = String, Path, description = "The job")),
    responses(
        (status = 202, description = "The run started", body = TriggeredRun),
        (status = 400, description = "An X-Actor header outside the rule", body = churn_service::ErrorBody),
        (status = 401, description = "No admin token", body = churn_service::ErrorBody),
        (status = 403, description = "A wrong token, a narrower one (READ_TOKEN, REGISTRY_TOKEN), or ADMIN_TOKEN is not set", body = churn_service::ErrorBody),
        (status = 404, description = "No such job", body = churn_service::ErrorBody),
        (status = 409, description = "A run of the job is in progress", body = churn_service::ErrorBody)))]
async fn trigger_run(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Result<(StatusCode, ApiJson<TriggeredRun>), Error> {
    let job_run_id = state.runner.trigger_by(&name, &actor).await?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(TriggeredRun {
            job_name: name,
            job_run_id,
        }),
    ))
}

/// `POST /jobs/{name}/pause`: no more ticks (every replica) until resumed; a continuous job stops after
/// its current batch.
#[utoipa::path(post, path = "/jobs/{name}/pause", tag = "jobs", security(("admin_token" = [])),
    params(("name" = String, Path, description = "The job")),
    responses(
        (status = 200, description = "Paused", body = JobPaused),
        (status = 400, description = "An X-Actor header outside the rule", body = churn_service::ErrorBody),
        (status = 401, description = "No admin token", body = churn_service::ErrorBody),
        (status = 403, description = "A wrong token, a narrower one (READ_TOKEN, REGISTRY_TOKEN), or ADMIN_TOKEN is not set", body = churn_service::ErrorBody),
        (status = 404, description = "No such job", body = churn_service::ErrorBody)))]
async fn pause(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Result<ApiJson<JobPaused>, Error> {
    state.runner.set_paused_by(&name, true, &actor).await?;
    Ok(ApiJson(JobPaused {
        job_name: name,
        paused: true,
    }))
}

/// `POST /jobs/{name}/resume`: ticks start again.
#[utoipa::path(post, path = "/jobs/{name}/resume", tag = "jobs", security(("admin_token" = [])),
    params(("name" = String, Path, description = "The job")),
    responses(
        (status = 200, description = "Resumed", body = JobPaused),
        (status = 400, description = "An X-Actor header outside the rule", body = churn_service::ErrorBody),
        (status = 401, description = "No admin token", body = churn_service::ErrorBody),
        (status = 403, description = "A wrong token, a narrower one (READ_TOKEN, REGISTRY_TOKEN), or ADMIN_TOKEN is not set", body = churn_service::ErrorBody),
        (status = 404, description = "No such job", body = churn_service::ErrorBody)))]
async fn resume(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Result<ApiJson<JobPaused>, Error> {
    state.runner.set_paused_by(&name, false, &actor).await?;
    Ok(ApiJson(JobPaused {
        job_name: name,
        paused: false,
    }))
}
