//! HTTP routes: the jobs API (Airflow's, in spirit), runs, readiness, and the MLflow-compatible API.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use churn_api::{JobInfo, JobPaused, JobRunBody, RunsPage, TriggeredRun};
use churn_jobs::{JobRun, RunStatus, RunnerError, Schedule, Trigger};
use churn_service::health::{Check, Critical, Readiness, infra_checks};
use churn_service::{ApiError, ApiJson, Limits, auth, finish_router_with};
use serde::Deserialize;
use serde_json::json;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::{AppState, console};

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
    components(schemas(StatusFilter, IngestRequest)),
    tags((name = "jobs"), (name = "ingest"), (name = "operations"), (name = "mlflow"))
)]
struct ApiDoc;

/// The documented routes; mutating ones behind the admin layer (which runs before any body is read).
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let admin = OpenApiRouter::new()
        .routes(routes!(trigger_run))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(ingest))
        .route_layer(middleware::from_fn_with_state(
            state.admin_token.clone(),
            auth::require_admin,
        ));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_jobs))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .merge(admin)
        .routes(routes!(dbt_docs))
        .routes(routes!(s3_event))
        .routes(routes!(ready))
        .merge(crate::mlflow::routes(state))
        // The console: HTML pages, not part of the JSON API's document.
        .route("/", get(console::overview))
        .route("/ui/models", get(console::models))
        .route("/ui/runs", get(console::runs))
        .route("/ui/jobs", get(console::jobs))
        .route("/ui/drift", get(console::drift))
        .route("/ui/data", get(console::data_page))
        .route(churn_console::pages::SCRIPT_PATH, get(console::script))
        .route(churn_console::pages::STYLE_PATH, get(console::style))
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

fn run_body(run: JobRun) -> JobRunBody {
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

fn store_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

fn unknown_job(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "there is no job named {name:?}; GET /jobs lists them"
    ))
    .with_details(json!({ "job": name }))
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
async fn list_jobs(State(state): State<AppState>) -> Result<ApiJson<Vec<JobInfo>>, ApiError> {
    Ok(ApiJson(job_infos(&state).await.map_err(store_error)?))
}

/// Every job with its schedule, switches, last run and next tick (`GET /jobs` and the console's page).
pub(crate) async fn job_infos(state: &AppState) -> Result<Vec<JobInfo>, churn_store::Error> {
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

/// A run status to filter by.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum StatusFilter {
    Running,
    Succeeded,
    Failed,
    Skipped,
}

impl From<StatusFilter> for RunStatus {
    fn from(filter: StatusFilter) -> Self {
        match filter {
            StatusFilter::Running => RunStatus::Running,
            StatusFilter::Succeeded => RunStatus::Succeeded,
            StatusFilter::Failed => RunStatus::Failed,
            StatusFilter::Skipped => RunStatus::Skipped,
        }
    }
}

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
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<ApiJson<RunsPage>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(
            "invalid query parameters: status is running, succeeded, failed or skipped; limit 1 to \
             500; offset at least 0",
        )
        .with_details(json!({ "reason": e.body_text() }))
    })?;
    if state.runner.spec(&name).is_none() {
        return Err(unknown_job(&name));
    }
    let status = query.status.map(RunStatus::from);
    let limit = query.limit.unwrap_or(50);
    let offset = query.offset.unwrap_or(0);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "invalid limit {limit}: must be between 1 and 500"
        ))
        .with_details(json!({ "parameter": "limit", "value": limit })));
    }
    if !(0..=1_000_000_000).contains(&offset) {
        return Err(ApiError::bad_request(format!(
            "invalid offset {offset}: must be between 0 and 1000000000"
        ))
        .with_details(json!({ "parameter": "offset", "value": offset })));
    }
    let runs = churn_store::ops::list_runs(state.runner.pool(), &name, status, limit, offset)
        .await
        .map_err(store_error)?;
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
) -> Result<ApiJson<JobRunBody>, ApiError> {
    let Path(id) = id.map_err(|e| {
        ApiError::bad_request("the run id is not a UUID")
            .with_details(json!({ "reason": e.body_text() }))
    })?;
    churn_store::ops::get_run(state.runner.pool(), id)
        .await
        .map_err(store_error)?
        .map(|run| ApiJson(run_body(run)))
        .ok_or_else(|| ApiError::not_found(format!("there is no run {id}")))
}

/// `POST /jobs/{name}/run`: start a run now (202 with its id); 409 while one is running.
#[utoipa::path(post, path = "/jobs/{name}/run", tag = "jobs", security(("admin_token" = [])),
    params(("name" = String, Path, description = "The job")),
    responses(
        (status = 202, description = "The run started", body = TriggeredRun),
        (status = 401, description = "No admin token", body = churn_service::ErrorBody),
        (status = 403, description = "A wrong admin token, or ADMIN_TOKEN is not set", body = churn_service::ErrorBody),
        (status = 404, description = "No such job", body = churn_service::ErrorBody),
        (status = 409, description = "A run of the job is in progress", body = churn_service::ErrorBody)))]
async fn trigger_run(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    match state.runner.trigger(&name, Trigger::Manual).await {
        Ok(run_id) => Ok((
            StatusCode::ACCEPTED,
            ApiJson(TriggeredRun {
                job_name: name,
                job_run_id: run_id,
            }),
        )),
        Err(RunnerError::UnknownJob(_)) => Err(unknown_job(&name)),
        Err(RunnerError::Busy(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{name} is running; wait for the run to finish (GET /jobs/{name}/runs)"),
            json!({ "job": name }),
        )),
        Err(RunnerError::ShuttingDown) => Err(ApiError::unavailable(
            "the scheduler is shutting down; try another replica or later",
        )),
        Err(e) => Err(ApiError::internal(e)),
    }
}

async fn set_paused(
    state: &AppState,
    name: &str,
    paused: bool,
) -> Result<ApiJson<JobPaused>, ApiError> {
    let result = if paused {
        state.runner.pause(name, "api").await
    } else {
        state.runner.resume(name, "api").await
    };
    match result {
        Ok(()) => Ok(ApiJson(JobPaused {
            job_name: name.to_owned(),
            paused,
        })),
        Err(RunnerError::UnknownJob(_)) => Err(unknown_job(name)),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// `POST /jobs/{name}/pause`: no more ticks (every replica) until resumed; a continuous job stops after
/// its current batch.
#[utoipa::path(post, path = "/jobs/{name}/pause", tag = "jobs", security(("admin_token" = [])),
    params(("name" = String, Path, description = "The job")),
    responses(
        (status = 200, description = "Paused", body = JobPaused),
        (status = 401, description = "No admin token", body = churn_service::ErrorBody),
        (status = 403, description = "A wrong admin token, or ADMIN_TOKEN is not set", body = churn_service::ErrorBody),
        (status = 404, description = "No such job", body = churn_service::ErrorBody)))]
async fn pause(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<ApiJson<JobPaused>, ApiError> {
    set_paused(&state, &name, true).await
}

/// `POST /jobs/{name}/resume`: ticks start again.
#[utoipa::path(post, path = "/jobs/{name}/resume", tag = "jobs", security(("admin_token" = [])),
    params(("name" = String, Path, description = "The job")),
    responses(
        (status = 200, description = "Resumed", body = JobPaused),
        (status = 401, description = "No admin token", body = churn_service::ErrorBody),
        (status = 403, description = "A wrong admin token, or ADMIN_TOKEN is not set", body = churn_service::ErrorBody),
        (status = 404, description = "No such job", body = churn_service::ErrorBody)))]
async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<ApiJson<JobPaused>, ApiError> {
    set_paused(&state, &name, false).await
}

/// Probes another service's `/ready`: ok when it answers 200.
async fn probe(state: &AppState, name: &str, base: &churn_config::ServiceUrl) -> Check {
    match state.http.get(format!("{base}/ready")).send().await {
        Ok(r) if r.status().is_success() => Check {
            critical: false,
            ..Check::pass(None)
        },
        Ok(r) => Check::down(name, false, format!("answered {}", r.status())),
        Err(e) => Check::down(name, false, e),
    }
}

/// `GET /ready`: the database and object store answer (critical); the synthesizer and the classifier
/// answer (the jobs that need them back off meanwhile: degraded).
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Ready (or degraded but serving)", body = Readiness),
    (status = 503, description = "Not ready", body = Readiness)))]
async fn ready(State(state): State<AppState>) -> Readiness {
    let compute = async {
        let (mut checks, synthesizer, classifier) = tokio::join!(
            infra_checks(
                &state.infra,
                Critical {
                    database: true,
                    object_store: true,
                },
            ),
            probe(&state, "synthesizer", &state.synthesizer),
            probe(&state, "classifier", &state.classifier),
        );
        checks.insert("synthesizer".to_owned(), synthesizer);
        checks.insert("classifier".to_owned(), classifier);
        Readiness::from_checks(checks)
    };
    state.ready.get(compute).await
}

/// The files of the dbt docs site that are served (the rest of dbt's target folder is not).
const DOCS_FILES: [(&str, &str); 4] = [
    ("static_index.html", "text/html; charset=utf-8"),
    ("index.html", "text/html; charset=utf-8"),
    ("manifest.json", "application/json"),
    ("catalog.json", "application/json"),
];

/// `GET /dbt/docs/{file}`: the dbt documentation site the dbt job generates (`/dbt/docs/static_index.html`
/// is the whole site in one page).
#[utoipa::path(get, path = "/dbt/docs/{file}", tag = "jobs",
    params(("file" = String, Path, description = "static_index.html, index.html, manifest.json or catalog.json")),
    responses(
        (status = 200, description = "The file", content_type = "text/html"),
        (status = 404, description = "Not one of the site's files, or the dbt job has not generated it yet", body = churn_service::ErrorBody)))]
async fn dbt_docs(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let Some((name, content_type)) = DOCS_FILES.iter().find(|(name, _)| *name == file) else {
        return Err(ApiError::not_found(format!(
            "/dbt/docs/{file} is not part of the docs site; open /dbt/docs/static_index.html"
        )));
    };
    let not_yet = || {
        ApiError::not_found(
            "the dbt docs are not generated yet: the dbt job writes them (POST /jobs/dbt/run)",
        )
    };
    let dir = state.dbt_docs.as_ref().ok_or_else(not_yet)?;
    let bytes = tokio::fs::read(dir.join(name))
        .await
        .map_err(|_| not_yet())?;
    Ok(([(axum::http::header::CONTENT_TYPE, *content_type)], bytes))
}

/// Body of `POST /ingest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct IngestRequest {
    /// The object: `landing/NAME` in the scheduler's store (also accepted: `s3://BUCKET/landing/NAME` of
    /// this store's bucket, which the pattern leaves out).
    #[schema(pattern = r"^landing/[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")]
    key: String,
}

/// The key relative to the service's store: `s3://bucket/key` must be in its bucket (and prefix).
fn store_key(state: &AppState, raw: &str) -> Option<String> {
    let Some(rest) = raw.strip_prefix("s3://") else {
        return Some(raw.trim_start_matches('/').to_owned());
    };
    let (bucket, key) = rest.split_once('/')?;
    match &state.infra.objects.url {
        churn_config::ObjectStoreUrl::S3 {
            bucket: configured,
            prefix,
        } if configured == bucket => {
            churn_ingest::event::relative_key(key, prefix).map(str::to_owned)
        }
        _ => None,
    }
}

fn ingest_error(e: churn_ingest::Error) -> ApiError {
    use churn_ingest::Error as E;
    match &e {
        E::NotFound { key } => {
            ApiError::not_found(e.to_string()).with_details(json!({ "key": key }))
        }
        E::InvalidKey { key, .. } => {
            ApiError::bad_request(e.to_string()).with_details(json!({ "key": key }))
        }
        E::Busy { key, .. } => {
            ApiError::new(StatusCode::CONFLICT, e.to_string(), json!({ "key": key }))
        }
        _ => ApiError::unavailable(e.to_string()),
    }
}

/// `POST /ingest`: ingest one landed file now and return its summary (rows in, inserted, updated,
/// rejected by reason). The same code path as the webhook and the `ingest` job: exactly once per content.
#[utoipa::path(post, path = "/ingest", tag = "ingest", security(("admin_token" = [])),
    request_body = IngestRequest,
    responses(
        (status = 200, description = "The file's summary (its outcome may be `failed`, with the reason)", content_type = "application/json"),
        (status = 400, description = "Not a key under landing/ of this store", body = churn_service::ErrorBody),
        (status = 401, description = "No admin token", body = churn_service::ErrorBody),
        (status = 403, description = "A wrong admin token, or ADMIN_TOKEN is not set", body = churn_service::ErrorBody),
        (status = 404, description = "No such object", body = churn_service::ErrorBody),
        (status = 408, description = "The request took longer than REQUEST_TIMEOUT_SECS", body = churn_service::ErrorBody),
        (status = 409, description = "Another worker is ingesting the file", body = churn_service::ErrorBody),
        (status = 413, description = "Body too large", body = churn_service::ErrorBody),
        (status = 415, description = "Not JSON", body = churn_service::ErrorBody),
        (status = 422, description = "A JSON body without a string `key`", body = churn_service::ErrorBody),
        (status = 503, description = "The store or database failed; try again", body = churn_service::ErrorBody)))]
async fn ingest(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<IngestRequest>,
) -> Result<ApiJson<churn_ingest::Summary>, ApiError> {
    let key = store_key(&state, &request.key).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{} is not in this scheduler's object store {}",
            request.key, state.infra.objects.url
        ))
    })?;
    state
        .ingestor
        .ingest(&key)
        .await
        .map(ApiJson)
        .map_err(ingest_error)
}

/// `POST /events/s3`: MinIO's bucket notification. Created objects under `landing/` are ingested and
/// under `score/` scored, in the background (202 at once); a redelivered event changes nothing. The
/// shared secret (S3_EVENT_SECRET) comes in `Authorization`, as MinIO's webhook `auth_token` sends it.
#[utoipa::path(post, path = "/events/s3", tag = "ingest",
    request_body(content = Object, description = "MinIO's event JSON (Records[].s3.bucket.name, Records[].s3.object.key)"),
    responses(
        (status = 202, description = "The objects taken, and those ignored (other buckets or prefixes)", content_type = "application/json"),
        (status = 400, description = "Not an S3 event body", body = churn_service::ErrorBody),
        (status = 401, description = "No secret, or a wrong one", body = churn_service::ErrorBody),
        (status = 403, description = "S3_EVENT_SECRET is not set: the webhook is disabled", body = churn_service::ErrorBody),
        (status = 408, description = "The request took longer than REQUEST_TIMEOUT_SECS", body = churn_service::ErrorBody),
        (status = 413, description = "Body too large", body = churn_service::ErrorBody)))]
async fn s3_event(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let Some(secret) = &state.event_secret else {
        return Err(ApiError::forbidden(
            "the S3 event webhook is disabled: set S3_EVENT_SECRET on the scheduler and as MinIO's webhook auth_token",
        ));
    };
    // MinIO sends its auth_token as the whole Authorization value, or as a bearer token.
    let given = churn_service::auth::bearer(&headers).or_else(|| {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
    });
    match given {
        Some(given) if churn_service::auth::same_secret(given, secret) => {}
        Some(_) => return Err(ApiError::unauthorized("the event secret is wrong")),
        None => {
            return Err(ApiError::unauthorized(
                "S3 events need Authorization: <S3_EVENT_SECRET>",
            ));
        }
    }
    let objects = churn_ingest::event::created_objects(&body)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut accepted = Vec::new();
    let mut ignored = Vec::new();
    for object in objects {
        let key = store_key(&state, &format!("s3://{}/{}", object.bucket, object.key));
        match key {
            Some(key) if key.starts_with(churn_ingest::LANDING) => {
                let ingestor = state.ingestor.clone();
                accepted.push(key.clone());
                tokio::spawn(async move {
                    match ingestor.ingest(&key).await {
                        Ok(summary) => {
                            tracing::info!(key, outcome = ?summary.outcome, rows = summary.rows_in, "ingested on an S3 event")
                        }
                        Err(e) => {
                            tracing::warn!(key, error = %e, "ingestion on an S3 event stopped; the ingest job will retry")
                        }
                    }
                });
            }
            Some(key) if key.starts_with(churn_ingest::SCORE) => {
                let scorer = state.scorer.clone();
                accepted.push(key.clone());
                tokio::spawn(async move {
                    match scorer.score(&key).await {
                        Ok(summary) => {
                            tracing::info!(key, outcome = ?summary.outcome, rows = summary.rows_in, "scored on an S3 event")
                        }
                        Err(e) => {
                            tracing::warn!(key, error = %e, "scoring on an S3 event stopped; the score job will retry")
                        }
                    }
                });
            }
            _ => ignored.push(format!("{}/{}", object.bucket, object.key)),
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(json!({ "accepted": accepted, "ignored": ignored })),
    ))
}
