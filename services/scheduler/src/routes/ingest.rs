//! `POST /ingest`: ingest one landed file, on the same code path as the webhook and the `ingest` job:
//! now for a small file, in the background (202, and `GET /ingest/files/{id}` to poll) for a large one.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use churn_api::{IngestAccepted, IngestedFileBody};
use churn_service::auth::Need;
use churn_service::{ApiError, ApiJson, auth};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Error;
use super::error::uuid_in_path;
use crate::AppState;

/// `POST /ingest`, behind the admin layer.
pub(super) fn router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest))
        .route_layer(middleware::from_fn_with_state(
            (state.tokens.clone(), Need::Admin),
            auth::require,
        ))
}

/// `GET /ingest/files/{id}` (guarded by the caller's read layer).
pub(super) fn read_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ingested_file))
}

/// Body of `POST /ingest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct IngestRequest {
    /// The object: `landing/NAME` in the scheduler's store (also accepted: `s3://BUCKET/landing/NAME` of
    /// this store's bucket, which the pattern leaves out).
    #[schema(pattern = r"^landing/[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")]
    key: String,
}

/// The key relative to the service's store: `s3://bucket/key` must be in its bucket (and prefix).
pub(super) fn store_key(state: &AppState, raw: &str) -> Option<String> {
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

/// `POST /ingest`: ingest one landed file and return its summary (rows in, inserted, updated, rejected
/// by reason); a file larger than INGEST_ASYNC_BYTES answers 202 with its id at once (and `Location:
/// /ingest/files/{id}` to poll) while a worker ingests it. The same code path as the webhook and the
/// `ingest` job: exactly once per content.
#[utoipa::path(post, path = "/ingest", tag = "ingest", security(("admin_token" = [])),
    request_body = IngestRequest,
    responses(
        (status = 200, description = "The file's summary (its outcome may be `failed`, with the reason)", content_type = "application/json"),
        (status = 202, description = "A file larger than INGEST_ASYNC_BYTES: claimed, and ingested in the background; poll the Location", body = IngestAccepted,
            headers(("Location" = String, description = "/ingest/files/{file_id}"))),
        (status = 400, description = "Not a key under landing/ of this store", body = churn_service::ErrorBody),
        (status = 401, description = "No admin token", body = churn_service::ErrorBody),
        (status = 403, description = "A wrong token, a narrower one (READ_TOKEN, REGISTRY_TOKEN), or ADMIN_TOKEN is not set", body = churn_service::ErrorBody),
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
) -> Result<Response, Error> {
    // The store's own location (a bucket, or a directory of this machine) is not echoed back.
    let key = store_key(&state, &request.key).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{:?} is not in this scheduler's object store: give landing/NAME, or s3://BUCKET/landing/NAME \
             of the scheduler's own bucket",
            request.key
        ))
        .with_details(serde_json::json!({ "field": "key", "value": request.key }))
    })?;
    if state.ingestor.size(&key).await? > state.ingest_async_bytes {
        let file = state.ingestor.start(&key).await?;
        let location = format!("/ingest/files/{}", file.file_id);
        let accepted = IngestAccepted {
            file_id: file.file_id,
            object_key: key,
            sha256: file.sha256,
            location: location.clone(),
        };
        return Ok((
            StatusCode::ACCEPTED,
            [(header::LOCATION, location)],
            ApiJson(accepted),
        )
            .into_response());
    }
    Ok(ApiJson(state.ingestor.ingest(&key).await?).into_response())
}

/// `GET /ingest/files/{id}`: where a landed file stands (`processing`, `processed` or `failed`), with
/// its row counts, the reason it failed and where it was moved.
#[utoipa::path(get, path = "/ingest/files/{id}", tag = "ingest",
    params(("id" = Uuid, Path, description = "The file's id, as POST /ingest answered it")),
    responses(
        (status = 200, description = "The file's state", body = IngestedFileBody),
        (status = 400, description = "Not a file id", body = churn_service::ErrorBody),
        (status = 404, description = "No such file", body = churn_service::ErrorBody)))]
async fn ingested_file(
    State(state): State<AppState>,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<ApiJson<IngestedFileBody>, Error> {
    let id = uuid_in_path(id, "file")?;
    let file = churn_store::ingestion::find_file(state.runner.pool(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no ingested file {id}")))?;
    Ok(ApiJson(IngestedFileBody {
        file_id: file.file_id,
        object_key: file.object_key,
        sha256: file.sha256,
        status: file.status.as_str().to_owned(),
        rows_total: file.rows_total,
        rows_accepted: file.rows_accepted,
        rows_inserted: file.rows_inserted,
        rows_updated: file.rows_updated,
        rows_rejected: file.rows_rejected,
        reason: file.reason,
        final_key: file.final_key,
    }))
}
