//! HTTP routes: `GET /synthesize` (one record, a JSON array, or streamed NDJSON) and `GET /ready`.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use churn_core::Customer;
use churn_service::health::{Check, Critical, Readiness, infra_checks};
use churn_service::{ApiError, Limits, finish_router};
use churn_synth::sampler::CHUNK_ROWS;
use serde_json::json;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

const NDJSON: &str = "application/x-ndjson";
/// Up to this many rows are answered from one buffer; more are streamed chunk by chunk.
const BUFFERED_ROWS: u64 = 2 * CHUNK_ROWS;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "synthesizer",
        description = "Synthetic Telco customers from a Gaussian copula fitted on the IBM churn data. \
            Every record passes the domain validation: business rules hold and every location is real."
    ),
    components(schemas(Customer))
)]
struct ApiDoc;

/// The documented routes (without the shared operational ones).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(synthesize))
        .routes(routes!(ready))
}

/// The service's whole router, for tests that drive it without a listener.
pub fn router(state: AppState, limits: Limits) -> (axum::Router, utoipa::openapi::OpenApi) {
    finish_router(routes(), state, limits)
}

/// Query parameters of `GET /synthesize`.
#[derive(Debug, utoipa::IntoParams)]
#[allow(dead_code)] // documents the parameters; they are parsed by `parse_query` for precise errors
struct SynthesizeParams {
    /// Number of records. Absent: one record as a JSON object. Present: a JSON array (or NDJSON).
    n: Option<u64>,
    /// Seed; the same seed gives the same records. Absent: a random seed, echoed in `x-seed`.
    seed: Option<u64>,
    /// `json` (default) or `ndjson`; `Accept: application/x-ndjson` also selects NDJSON.
    format: Option<String>,
}

struct Query {
    n: Option<u64>,
    seed: u64,
    ndjson: bool,
}

fn parse_query(raw: Option<&str>, headers: &HeaderMap, max_rows: u64) -> Result<Query, ApiError> {
    let invalid = |param: &str, value: &str, rule: String| {
        ApiError::bad_request(format!("invalid query parameter {param}={value:?}: {rule}"))
            .with_details(json!({ "parameter": param, "value": value, "rule": rule }))
    };
    let mut query = Query {
        n: None,
        seed: rand_seed(),
        ndjson: headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains(NDJSON)),
    };
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "n" => {
                let n: u64 = value.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    invalid("n", &value, "must be a whole number of at least 1".into())
                })?;
                if n > max_rows {
                    return Err(invalid(
                        "n",
                        &value,
                        format!("must be at most {max_rows} (the SYNTHESIZE_MAX_ROWS cap)"),
                    ));
                }
                query.n = Some(n);
            }
            "seed" => {
                query.seed = value.parse().map_err(|_| {
                    invalid(
                        "seed",
                        &value,
                        "must be a whole number from 0 to 2^64-1".into(),
                    )
                })?;
            }
            "format" => match value.as_ref() {
                "json" => query.ndjson = false,
                "ndjson" => query.ndjson = true,
                _ => return Err(invalid("format", &value, "must be json or ndjson".into())),
            },
            other => {
                return Err(invalid(
                    other,
                    &value,
                    "unknown parameter; expected n, seed or format".into(),
                ));
            }
        }
    }
    Ok(query)
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// `GET /synthesize`: synthetic customers.
#[utoipa::path(get, path = "/synthesize", tag = "synthesis", params(SynthesizeParams),
    responses(
        (status = 200, description = "One customer (no `n`), a JSON array, or NDJSON lines", body = Customer,
         headers(("x-model-version" = i32, description = "Synthesizer version"),
                 ("x-seed" = u64, description = "The seed used"))),
        (status = 400, description = "Invalid parameter, or n above the cap", body = churn_service::ErrorBody),
    ))]
async fn synthesize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = parse_query(raw.as_deref(), &headers, state.max_rows)?;
    let rows = query.n.unwrap_or(1);
    metrics::counter!("synthesized_rows_total").increment(rows);
    let content_type = if query.ndjson {
        NDJSON
    } else {
        "application/json"
    };
    let body = match query.n {
        None => {
            let model = state.model.clone();
            let seed = query.seed;
            tokio::task::spawn_blocking(move || {
                let row = model.sampler.sample(1, seed, 1);
                row.first()
                    .map(|r| serde_json::to_vec(&model.sampler.to_customer(r)))
                    .unwrap_or_else(|| Ok(b"{}".to_vec()))
            })
            .await
            .map_err(ApiError::internal)?
            .map(Body::from)
            .map_err(ApiError::internal)?
        }
        Some(n) if n <= BUFFERED_ROWS => {
            let model = state.model.clone();
            let (seed, ndjson) = (query.seed, query.ndjson);
            let bytes = tokio::task::spawn_blocking(move || {
                let threads = if n > CHUNK_ROWS { 2 } else { 1 };
                let rows = model.sampler.sample(n, seed, threads);
                encode(&model.sampler, &rows, ndjson, true, true)
            })
            .await
            .map_err(ApiError::internal)?;
            Body::from(bytes)
        }
        Some(n) => stream(state.clone(), n, query.seed, query.ndjson),
    };
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response();
    let h = response.headers_mut();
    h.insert("x-model-version", HeaderValue::from(state.model.version));
    h.insert("x-seed", HeaderValue::from(query.seed));
    Ok(response)
}

/// Serializes rows as NDJSON lines or as (part of) a JSON array.
fn encode(
    sampler: &churn_synth::Sampler,
    rows: &[churn_synth::SyntheticRow],
    ndjson: bool,
    first: bool,
    last: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 560 + 2);
    if !ndjson && first {
        out.push(b'[');
    }
    for (i, row) in rows.iter().enumerate() {
        if !ndjson && (i > 0 || !first) {
            out.push(b',');
        }
        // Serializing a plain struct of strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &sampler.to_customer(row));
        if ndjson {
            out.push(b'\n');
        }
    }
    if !ndjson && last {
        out.push(b']');
    }
    out
}

/// Streams `n` rows chunk by chunk: a blocking producer fills a small bounded channel, so memory stays
/// flat whatever `n` is, and a client that disconnects stops the producer.
fn stream(state: AppState, n: u64, seed: u64, ndjson: bool) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::task::spawn_blocking(move || {
        let chunks = n.div_ceil(CHUNK_ROWS);
        let mut rows = Vec::with_capacity(CHUNK_ROWS as usize);
        for chunk in 0..chunks {
            rows.clear();
            let count = (n - chunk * CHUNK_ROWS).min(CHUNK_ROWS) as usize;
            state
                .model
                .sampler
                .sample_chunk(seed, chunk, count, &mut rows);
            let bytes = encode(
                &state.model.sampler,
                &rows,
                ndjson,
                chunk == 0,
                chunk + 1 == chunks,
            );
            if tx.blocking_send(Bytes::from(bytes)).is_err() {
                break;
            }
        }
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Body::from_stream(chunks)
}

/// `GET /ready`: the model is loaded and the database answers (the object store is only needed to load
/// a new model, so its outage degrades rather than fails readiness).
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Ready (or degraded but serving)", body = Readiness),
    (status = 503, description = "Not ready", body = Readiness)))]
async fn ready(State(state): State<AppState>) -> Readiness {
    let mut checks = infra_checks(
        &state.infra,
        Critical {
            database: true,
            object_store: false,
        },
    )
    .await;
    checks.insert(
        "model".to_owned(),
        Check::pass(Some(format!("synthesizer version {}", state.model.version))),
    );
    Readiness::from_checks(checks)
}
