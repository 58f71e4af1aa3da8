//! `POST /events/s3`: MinIO's bucket notifications, which start ingestion (`landing/`) and scoring
//! (`score/`) in the background.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use churn_config::Secret;
use churn_service::{ApiError, ApiJson, auth};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Error;
use super::ingest::store_key;
use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(s3_event))
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
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, ApiJson<Value>), Error> {
    check_secret(state.event_secret.as_ref(), &headers)?;
    let objects = churn_ingest::event::created_objects(&body)?;
    let (accepted, ignored) = dispatch(&state, objects);
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(json!({ "accepted": accepted, "ignored": ignored })),
    ))
}

/// 403 while the webhook is disabled, 401 without the secret or with a wrong one.
fn check_secret(secret: Option<&Secret>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(secret) = secret else {
        return Err(ApiError::forbidden(
            "the S3 event webhook is disabled: set S3_EVENT_SECRET on the scheduler and as MinIO's webhook auth_token",
        ));
    };
    // MinIO sends its auth_token as the whole Authorization value, or as a bearer token.
    let given = auth::bearer(headers).or_else(|| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
    });
    match given {
        Some(given) if auth::same_secret(given, secret) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("the event secret is wrong")),
        None => Err(ApiError::unauthorized(
            "S3 events need Authorization: <S3_EVENT_SECRET>",
        )),
    }
}

/// Starts ingesting or scoring each created object of this store in the background; returns the keys
/// taken and the objects ignored (other buckets or prefixes).
fn dispatch(
    state: &AppState,
    objects: Vec<churn_ingest::event::CreatedObject>,
) -> (Vec<String>, Vec<String>) {
    let mut accepted = Vec::new();
    let mut ignored = Vec::new();
    for object in objects {
        let key = store_key(state, &format!("s3://{}/{}", object.bucket, object.key));
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
    (accepted, ignored)
}
