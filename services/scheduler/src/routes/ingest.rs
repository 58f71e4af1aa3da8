//! `POST /ingest`: ingest one landed file now, on the same code path as the webhook and the `ingest` job.

use axum::extract::State;
use axum::middleware;
use churn_service::{ApiError, ApiJson, auth};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Error;
use crate::AppState;

/// `POST /ingest`, behind the admin layer.
pub(super) fn router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest))
        .route_layer(middleware::from_fn_with_state(
            state.admin_token.clone(),
            auth::require_admin,
        ))
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
) -> Result<ApiJson<churn_ingest::Summary>, Error> {
    // The store's own location (a bucket, or a directory of this machine) is not echoed back.
    let key = store_key(&state, &request.key).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{:?} is not in this scheduler's object store: give landing/NAME, or s3://BUCKET/landing/NAME \
             of the scheduler's own bucket",
            request.key
        ))
        .with_details(serde_json::json!({ "field": "key", "value": request.key }))
    })?;
    Ok(ApiJson(state.ingestor.ingest(&key).await?))
}
