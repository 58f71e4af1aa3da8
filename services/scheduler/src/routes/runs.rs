//! Runs: a job's runs page by page (`GET /jobs/{name}/runs`) and one run (`GET /runs/{id}`).

use axum::extract::{Path, State};
use churn_api::{JobRunBody, RunsPage};
use churn_jobs::{JobRun, RunStatus};
use churn_service::{ApiError, ApiJson, ApiQuery, QueryError, QueryParams};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Error;
use super::error::{unknown_job, uuid_in_path};
use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
}

/// A run as the API shows it: its record, with its duration once finished.
pub(super) fn run_body(run: JobRun) -> JobRunBody {
    let duration_seconds = run
        .finished_at
        .map(|end| (end - run.started_at).num_milliseconds() as f64 / 1000.0);
    JobRunBody {
        job_run_id: run.job_run_id,
        job_name: run.job_name,
        trigger: run.trigger.as_str().to_owned(),
        status: run.status.as_str().to_owned(),
        attempt: run.attempt,
        host: run.host,
        started_at: run.started_at,
        finished_at: run.finished_at,
        duration_seconds,
        rows_affected: run.rows_affected,
        error: run.error,
        details: run.details.0,
    }
}

/// A run status to filter by.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum StatusFilter {
    Running,
    Succeeded,
    Failed,
    Skipped,
    /// Stopped by shutdown (or a lost lock, or a pause) before it finished; not a failure.
    Interrupted,
}

impl From<StatusFilter> for RunStatus {
    fn from(filter: StatusFilter) -> Self {
        match filter {
            StatusFilter::Running => RunStatus::Running,
            StatusFilter::Succeeded => RunStatus::Succeeded,
            StatusFilter::Failed => RunStatus::Failed,
            StatusFilter::Skipped => RunStatus::Skipped,
            StatusFilter::Interrupted => RunStatus::Interrupted,
        }
    }
}

const MAX_LIMIT: i64 = 500;
const MAX_OFFSET: i64 = 1_000_000_000;

/// Query of `GET /jobs/{name}/runs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RunsQuery {
    /// Only runs with this status.
    status: Option<StatusFilter>,
    /// Runs per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Runs to skip, 0 to 1,000,000,000 (default 0).
    #[param(minimum = 0, maximum = 1_000_000_000)]
    offset: Option<i64>,
}

impl QueryParams for RunsQuery {
    const RULES: &'static [(&'static str, &'static str)] = &[
        ("status", "must be running, succeeded, failed or skipped"),
        ("limit", "must be between 1 and 500"),
        ("offset", "must be between 0 and 1000000000"),
    ];

    fn check(&self) -> Result<(), QueryError> {
        let out_of = |parameter: &str, value: i64, (low, high): (i64, i64)| {
            QueryError::new(
                parameter,
                value.to_string(),
                format!("must be between {low} and {high}"),
            )
        };
        match (self.limit, self.offset) {
            (Some(limit), _) if !(1..=MAX_LIMIT).contains(&limit) => {
                Err(out_of("limit", limit, (1, MAX_LIMIT)))
            }
            (_, Some(offset)) if !(0..=MAX_OFFSET).contains(&offset) => {
                Err(out_of("offset", offset, (0, MAX_OFFSET)))
            }
            _ => Ok(()),
        }
    }
}

/// `GET /jobs/{name}/runs`: a job's runs, newest first.
#[utoipa::path(get, path = "/jobs/{name}/runs", tag = "jobs",
    params(("name" = String, Path, description = "The job"), RunsQuery),
    responses(
        (status = 200, description = "A page of runs", body = RunsPage),
        (status = 400, description = "A bad status, limit or offset", body = churn_service::ErrorBody),
        (status = 404, description = "No such job", body = churn_service::ErrorBody)))]
async fn list_runs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<ApiJson<RunsPage>, Error> {
    if state.runner.spec(&name).is_none() {
        return Err(unknown_job(&name).into());
    }
    let (limit, offset) = (query.limit.unwrap_or(50), query.offset.unwrap_or(0));
    let status = query.status.map(RunStatus::from);
    let runs =
        churn_store::ops::list_runs(state.runner.pool(), &name, status, limit, offset).await?;
    let next_offset = (runs.len() as i64 == limit).then_some(offset + limit);
    Ok(ApiJson(RunsPage {
        runs: runs.into_iter().map(run_body).collect(),
        limit,
        offset,
        next_offset,
    }))
}

/// `GET /runs/{id}`: one run.
#[utoipa::path(get, path = "/runs/{id}", tag = "jobs",
    params(("id" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = JobRunBody),
        (status = 400, description = "Not a run id", body = churn_service::ErrorBody),
        (status = 404, description = "No such run", body = churn_service::ErrorBody)))]
async fn get_run(
    State(state): State<AppState>,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<ApiJson<JobRunBody>, Error> {
    let id = uuid_in_path(id, "run")?;
    churn_store::ops::get_run(state.runner.pool(), id)
        .await?
        .map(|run| ApiJson(run_body(run)))
        .ok_or_else(|| ApiError::not_found(format!("there is no run {id}")).into())
}
