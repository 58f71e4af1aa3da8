//! `POST /events/s3`: MinIO's bucket notifications, which start ingestion (`landing/`) and scoring
//! (`score/`) in the background.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use churn_config::Secret;
use churn_service::{ApiError, ApiJson, auth};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Error;
use super::ingest::store_key;
use crate::AppState;

/// `POST /events/s3`, behind the secret's layer: a caller without the secret is refused before a byte
/// of its body is read.
pub(super) fn router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(s3_event))
        .route_layer(middleware::from_fn_with_state(
            state.event_secret.clone(),
            require_event_secret,
        ))
}

/// Route layer: the webhook's shared secret.
async fn require_event_secret(
    State(secret): State<Option<Secret>>,
    request: Request,
    next: Next,
) -> Response {
    match check_secret(secret.as_ref(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// `POST /events/s3`: MinIO's bucket notification. Created objects under `landing/` are ingested and
/// under `score/` scored, in the background (202 at once) on the shared file workers; objects beyond
/// their queue (INGEST_QUEUE) are `deferred`: left in place for the polling jobs. A redelivered event
/// changes nothing. The shared secret (S3_EVENT_SECRET) comes in `Authorization`, as MinIO's webhook
/// `auth_token` sends it.
#[utoipa::path(post, path = "/events/s3", tag = "ingest",
    request_body(content = Object, description = "MinIO's event JSON (Records[].s3.bucket.name, Records[].s3.object.key)"),
    responses(
        (status = 202, description = "The objects taken, those deferred to the polling jobs (the queue was full), and those ignored (other buckets or prefixes)", content_type = "application/json"),
        (status = 400, description = "Not an S3 event body", body = churn_service::ErrorBody),
        (status = 401, description = "No secret, or a wrong one", body = churn_service::ErrorBody),
        (status = 403, description = "S3_EVENT_SECRET is not set: the webhook is disabled", body = churn_service::ErrorBody),
        (status = 408, description = "The request took longer than REQUEST_TIMEOUT_SECS", body = churn_service::ErrorBody),
        (status = 413, description = "Body too large", body = churn_service::ErrorBody)))]
async fn s3_event(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, ApiJson<Value>), Error> {
    let objects = churn_ingest::event::created_objects(&body)?;
    let Dispatched {
        accepted,
        deferred,
        ignored,
    } = dispatch(&state, objects);
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(json!({ "accepted": accepted, "deferred": deferred, "ignored": ignored })),
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

/// Starts ingesting or scoring each created object of this store in the background, as far as the
/// workers' queue has room; returns the keys taken, those deferred (the queue was full: they stay where
/// they landed, for the polling jobs) and the objects ignored (other buckets or prefixes).
fn dispatch(state: &AppState, objects: Vec<churn_ingest::event::CreatedObject>) -> Dispatched {
    let mut out = Dispatched::default();
    for object in objects {
        let key = store_key(state, &format!("s3://{}/{}", object.bucket, object.key));
        let Some(key) = key
            .filter(|k| k.starts_with(churn_ingest::LANDING) || k.starts_with(churn_ingest::SCORE))
        else {
            out.ignored
                .push(format!("{}/{}", object.bucket, object.key));
            continue;
        };
        // The ingestor and the scorer share one pool of workers, and so one queue.
        let Some(place) = state.ingestor.workers().try_queue() else {
            metrics::counter!("ingest_events_deferred_total").increment(1);
            out.deferred.push(key);
            continue;
        };
        out.accepted.push(key.clone());
        if key.starts_with(churn_ingest::LANDING) {
            let ingestor = state.ingestor.clone();
            tokio::spawn(async move {
                match ingestor.ingest(&key).await {
                    Ok(summary) => {
                        tracing::info!(key, outcome = ?summary.outcome, rows = summary.rows_in, "ingested on an S3 event")
                    }
                    Err(e) => {
                        tracing::warn!(key, error = %e, "ingestion on an S3 event stopped; the ingest job will retry")
                    }
                }
                drop(place);
            });
        } else {
            let scorer = state.scorer.clone();
            tokio::spawn(async move {
                match scorer.score(&key).await {
                    Ok(summary) => {
                        tracing::info!(key, outcome = ?summary.outcome, rows = summary.rows_in, "scored on an S3 event")
                    }
                    Err(e) => {
                        tracing::warn!(key, error = %e, "scoring on an S3 event stopped; the score job will retry")
                    }
                }
                drop(place);
            });
        }
    }
    out
}

/// What became of an event's objects.
#[derive(Debug, Default)]
struct Dispatched {
    accepted: Vec<String>,
    deferred: Vec<String>,
    ignored: Vec<String>,
}
