//! `GET /dbt/docs/{file}`: the dbt documentation site the dbt job generates.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use churn_service::ApiError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dbt_docs))
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
    Ok(([(header::CONTENT_TYPE, *content_type)], bytes))
}
