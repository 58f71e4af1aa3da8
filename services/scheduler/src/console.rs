//! The web console's routes: server-rendered pages (churn-console) at `/` and `/ui/*`, and their script
//! and style compiled into the binary. Pages read; the actions on them call the admin API with the token.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use churn_console::{data, pages};
use churn_models::classifier::MODEL_NAME;
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;

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

pub(crate) async fn overview(State(state): State<AppState>) -> Response {
    let pool = state.runner.pool();
    page(
        data::overview(pool, MODEL_NAME)
            .await
            .map(|o| pages::overview(&o, Utc::now())),
    )
}

pub(crate) async fn models(State(state): State<AppState>) -> Response {
    let pool = state.runner.pool();
    page(
        data::models(pool, MODEL_NAME)
            .await
            .map(|(versions, decisions)| {
                pages::models(MODEL_NAME, &versions, &decisions, Utc::now())
            }),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct RunsQuery {
    run: Option<Uuid>,
}

pub(crate) async fn runs(State(state): State<AppState>, Query(q): Query<RunsQuery>) -> Response {
    let pool = state.runner.pool();
    page(
        data::runs(pool, q.run)
            .await
            .map(|(cards, selected, board)| pages::runs(&cards, selected, &board, Utc::now())),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct JobsQuery {
    job: Option<String>,
}

pub(crate) async fn jobs(State(state): State<AppState>, Query(q): Query<JobsQuery>) -> Response {
    // Only a job the runner knows filters the history; anything else shows every job's runs.
    let job = q.job.filter(|name| state.runner.spec(name).is_some());
    let result = async {
        let infos = crate::api::job_infos(&state).await?;
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

pub(crate) async fn drift(State(state): State<AppState>) -> Response {
    page(
        data::drift(state.runner.pool(), 30)
            .await
            .map(|history| pages::drift(&history, Utc::now())),
    )
}

pub(crate) async fn data_page(State(state): State<AppState>) -> Response {
    page(
        data::data(state.runner.pool())
            .await
            .map(|(files, reasons)| pages::data(&files, &reasons, Utc::now())),
    )
}

pub(crate) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        pages::SCRIPT,
    )
        .into_response()
}

pub(crate) async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        pages::STYLE,
    )
        .into_response()
}
