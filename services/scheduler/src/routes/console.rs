//! The web console's routes: server-rendered pages (churn-console) at `/` and `/ui/*`, and their script
//! and style compiled into the binary. Pages read (behind READ_TOKEN when it is set: a browser is asked
//! for it with HTTP Basic); the actions on them call the admin API with the token.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use churn_console::{data, pages};
use churn_models::classifier::MODEL_NAME;
use churn_service::{ApiQuery, QueryParams};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::AppState;

/// The console's pages, script and style: HTML, not part of the JSON API's document.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/", get(overview))
        .route("/ui/models", get(models))
        .route("/ui/runs", get(runs))
        .route("/ui/jobs", get(jobs))
        .route("/ui/drift", get(drift))
        .route("/ui/data", get(data_page))
        .route("/ui/audit", get(audit_page))
        .route(pages::SCRIPT_PATH, get(script))
        .route(pages::STYLE_PATH, get(style))
        .layer(middleware::map_response(security_headers))
}

/// What the console's pages allow a browser: its own script, style and API only (no inline code, so
/// an injected tag cannot run), no framing by another site, no type sniffing, no referrer sent on.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A page, or an error page that says what to do (the cause goes to the log, not the browser).
fn page(result: Result<maud::Markup, churn_console::Error>) -> Response {
    match result {
        Ok(markup) => Html(markup.into_string()).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console page failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Html(
                    pages::error(
                        "The warehouse did not answer. Check the scheduler's /ready and its log, then reload.",
                        Utc::now(),
                    )
                    .into_string(),
                ),
            )
                .into_response()
        }
    }
}

async fn overview(State(state): State<AppState>) -> Response {
    let pool = state.runner.pool();
    page(
        data::overview(pool, MODEL_NAME)
            .await
            .map(|o| pages::overview(&o, Utc::now())),
    )
}

async fn models(State(state): State<AppState>) -> Response {
    let pool = state.runner.pool();
    page(
        data::models(pool, MODEL_NAME)
            .await
            .map(|(versions, decisions, traffic)| {
                pages::models(MODEL_NAME, &versions, &decisions, &traffic, Utc::now())
            }),
    )
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    run: Option<Uuid>,
}

impl QueryParams for RunsQuery {
    const RULES: &'static [(&'static str, &'static str)] = &[("run", "must be a run id (a UUID)")];
    const REFUSE_UNKNOWN: bool = false;
}

async fn runs(State(state): State<AppState>, ApiQuery(q): ApiQuery<RunsQuery>) -> Response {
    let pool = state.runner.pool();
    page(
        data::runs(pool, q.run)
            .await
            .map(|(cards, selected, board)| pages::runs(&cards, selected, &board, Utc::now())),
    )
}

#[derive(Debug, Deserialize)]
struct JobsQuery {
    job: Option<String>,
}

impl QueryParams for JobsQuery {
    const RULES: &'static [(&'static str, &'static str)] = &[("job", "must be a job's name")];
    const REFUSE_UNKNOWN: bool = false;
}

async fn jobs(State(state): State<AppState>, ApiQuery(q): ApiQuery<JobsQuery>) -> Response {
    // Only a job the runner knows filters the history; anything else shows every job's runs.
    let job = q.job.filter(|name| state.runner.spec(name).is_some());
    let result = async {
        let infos = super::jobs::job_infos(&state).await?;
        let lines: Vec<data::JobLine> = infos
            .into_iter()
            .map(|j| data::JobLine {
                name: j.name,
                schedule: j.schedule,
                enabled: j.enabled,
                paused: j.paused,
                next_run: j.next_run,
                last_run: j.last_run.map(|r| (r.status, r.started_at)),
            })
            .collect();
        let history = data::recent_runs(state.runner.pool(), job.as_deref(), 100).await?;
        Ok(pages::jobs(&lines, &history, job.as_deref(), Utc::now()))
    };
    page(result.await)
}

async fn drift(State(state): State<AppState>) -> Response {
    page(
        data::drift(state.runner.pool(), 30)
            .await
            .map(|history| pages::drift(&history, Utc::now())),
    )
}

async fn data_page(State(state): State<AppState>) -> Response {
    page(
        data::data(state.runner.pool())
            .await
            .map(|(files, reasons)| pages::data(&files, &reasons, Utc::now())),
    )
}

async fn audit_page(State(state): State<AppState>) -> Response {
    page(
        churn_store::audit::recent(state.runner.pool(), 200)
            .await
            .map_err(churn_console::Error::from)
            .map(|entries| pages::audit(&entries, Utc::now())),
    )
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        pages::SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        pages::STYLE,
    )
        .into_response()
}
