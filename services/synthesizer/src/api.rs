//! HTTP routes: `GET /synthesize` (one record, a JSON array, or streamed NDJSON) and `GET /ready`.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use churn_api::{SynthesizeAnswer, SynthesizeFormat, SynthesizeParams};
use churn_core::Customer;
use churn_service::health::{Check, Critical, Readiness, infra_checks};
use churn_service::{ApiError, ApiQuery, Limits, QueryError, QueryParams, finish_router_with};
use churn_synth::sampler::CHUNK_ROWS;
use serde::Deserialize;
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
    components(schemas(Customer, churn_api::SynthesizeFormat))
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
    let max_rows = state.max_rows;
    finish_router_with(routes(), state, limits, move |doc| {
        // The cap on `n` is configuration (SYNTHESIZE_MAX_ROWS): the served document states it.
        if let Some(parameters) = doc
            .pointer_mut("/paths/~1synthesize/get/parameters")
            .and_then(serde_json::Value::as_array_mut)
        {
            for p in parameters.iter_mut() {
                match p["name"].as_str() {
                    Some("n") => p["schema"]["maximum"] = json!(max_rows),
                    // Any unsigned 64-bit number is a seed (not only the int64 range).
                    Some("seed") => {
                        p["schema"] = json!({
                            "type": "integer", "minimum": 0, "maximum": u64::MAX
                        });
                    }
                    _ => {}
                }
            }
        }
    })
}

/// `GET /synthesize`'s parameters, with the rules the shared extractor quotes.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
struct SynthesizeQuery(SynthesizeParams);

impl QueryParams for SynthesizeQuery {
    const RULES: &'static [(&'static str, &'static str)] = &[
        ("n", "must be a whole number of at least 1"),
        ("seed", "must be a whole number from 0 to 2^64-1"),
        ("format", "must be json or ndjson"),
    ];

    fn check(&self) -> Result<(), QueryError> {
        match self.0.n {
            Some(0) => Err(QueryError::new("n", "0", Self::RULES[0].1)),
            _ => Ok(()),
        }
    }
}

/// What a request asks for: the parameters with their defaults filled in.
struct Query {
    n: Option<u64>,
    seed: u64,
    ndjson: bool,
}

/// Fills in the defaults (a random seed; NDJSON when `Accept` asks for it and `format` is absent) and
/// holds `n` to the configured cap.
fn query(
    params: SynthesizeParams,
    headers: &HeaderMap,
    max_rows: u64,
) -> Result<Query, QueryError> {
    if let Some(n) = params.n.filter(|n| *n > max_rows) {
        return Err(QueryError::new(
            "n",
            n.to_string(),
            format!("must be at most {max_rows} (the SYNTHESIZE_MAX_ROWS cap)"),
        ));
    }
    let ndjson = match params.format {
        Some(format) => format == SynthesizeFormat::Ndjson,
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains(NDJSON)),
    };
    Ok(Query {
        n: params.n,
        seed: params.seed.unwrap_or_else(rand_seed),
        ndjson,
    })
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// `GET /synthesize`: synthetic customers.
#[utoipa::path(get, path = "/synthesize", tag = "synthesis", params(SynthesizeParams),
    responses(
        (status = 200, description = "One customer (no `n`), a JSON array of `n` customers, or NDJSON lines \
            (`format=ndjson` or `Accept: application/x-ndjson`)",
         content(
            (SynthesizeAnswer = "application/json"),
            (String = "application/x-ndjson"),
         ),
         headers(("x-model-version" = i32, description = "Synthesizer version"),
                 ("x-seed" = u64, description = "The seed used"))),
        (status = 400, description = "Invalid parameter, or n above the cap", body = churn_service::ErrorBody),
        (status = 503, description = "A large `n` while every stream slot is taken (SYNTHESIZE_MAX_STREAMS), \
            or the service at its concurrency limit; retry after Retry-After", body = churn_service::ErrorBody),
    ))]
async fn synthesize(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(SynthesizeQuery(params)): ApiQuery<SynthesizeQuery>,
) -> Result<Response, ApiError> {
    let query = query(params, &headers, state.max_rows)?;
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
        Some(n) => {
            // Streams hold a blocking thread for their whole length: they get slots of their own, and
            // are shed rather than queued when the slots are taken.
            let Ok(slot) = state.streams.clone().try_acquire_owned() else {
                metrics::counter!("synthesize_streams_shed_total").increment(1);
                let mut response = ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "every stream slot is taken (SYNTHESIZE_MAX_STREAMS); retry in a few seconds, \
                         or ask for at most {BUFFERED_ROWS} rows per request"
                    ),
                    json!({ "retry_after_secs": 5 }),
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return Ok(response);
            };
            stream(state.clone(), n, query.seed, query.ndjson, slot)
        }
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
/// flat whatever `n` is. The producer stops when the client disconnects, when a chunk waits longer than
/// the send timeout for the client to read it, or at the stream's total deadline (the body then ends
/// early, and the client sees a truncated answer); it holds `slot` until it stops.
fn stream(
    state: AppState,
    n: u64,
    seed: u64,
    ndjson: bool,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let deadline = std::time::Instant::now() + state.stream_timeout;
    let send_timeout = state.send_timeout;
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let chunks = n.div_ceil(CHUNK_ROWS);
        let mut rows = Vec::with_capacity(CHUNK_ROWS as usize);
        for chunk in 0..chunks {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            if remaining.is_zero() {
                metrics::counter!("synthesize_streams_cut_total", "reason" => "deadline")
                    .increment(1);
                tracing::warn!(n, chunk, "stream cut at SYNTHESIZE_STREAM_TIMEOUT_SECS");
                break;
            }
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
            let wait = send_timeout.min(remaining);
            match runtime.block_on(tokio::time::timeout(wait, tx.send(Bytes::from(bytes)))) {
                Ok(Ok(())) => {}
                // The client went away.
                Ok(Err(_)) => break,
                Err(_) => {
                    // The wait ended at the stream's deadline or at the send timeout, whichever came first.
                    let reason = if std::time::Instant::now() >= deadline {
                        "deadline"
                    } else {
                        "send_timeout"
                    };
                    metrics::counter!("synthesize_streams_cut_total", "reason" => reason)
                        .increment(1);
                    tracing::warn!(n, chunk, reason, "stream cut before its end");
                    break;
                }
            }
        }
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Body::from_stream(chunks)
}

/// `GET /ready`: the model is loaded; a database or object-store outage only degrades readiness, since
/// both are needed only to load a new model.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Ready (or degraded but serving)", body = Readiness),
    (status = 503, description = "Not ready", body = Readiness)))]
async fn ready(State(state): State<AppState>) -> Readiness {
    let compute = async {
        // The model is loaded (the service does not start without one) and sampling needs neither the
        // database nor the object store: both only matter for loading a new version.
        let mut checks = infra_checks(
            &state.infra,
            Critical {
                database: false,
                object_store: false,
            },
        )
        .await;
        checks.insert(
            "model".to_owned(),
            Check::pass(Some(format!("version {}", state.model.version))),
        );
        Readiness::from_checks(checks)
    };
    state.ready.get(compute).await
}
