//! The classifier's records of real traffic (migration V12): the inference log, written in batches by one
//! binary COPY, and the outcomes callers feed back, inserted all or none by one statement.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use churn_core::{Category, Customer};
use sqlx::PgPool;
use uuid::Uuid;

use crate::Error;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01), the origin of binary timestamps.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Which route served a prediction (the log's `endpoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Predict,
    Explain,
    Batch,
    Stream,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Predict => "predict",
            Endpoint::Explain => "explain",
            Endpoint::Batch => "batch",
            Endpoint::Stream => "stream",
        }
    }

    /// What the metrics slice by: one customer a call is `api`, many are `batch`.
    pub fn source(self) -> &'static str {
        match self {
            Endpoint::Predict | Endpoint::Explain => "api",
            Endpoint::Batch | Endpoint::Stream => "batch",
        }
    }
}

/// Which model of the request scored the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    Champion,
    Canary,
    Shadow,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Champion => "champion",
            Arm::Canary => "canary",
            Arm::Shadow => "shadow",
        }
    }
}

/// One scored customer of one request, as the inference log keeps it.
#[derive(Debug, Clone)]
pub struct InferenceRow {
    /// The request's ULID.
    pub request_id: Uuid,
    /// The customer's place in a batch; 0 for a single prediction.
    pub item: i32,
    pub predicted_at: DateTime<Utc>,
    pub endpoint: Endpoint,
    /// `api` or `batch` (the endpoint's), or what a batch's caller declared: `synthetic` (the generate
    /// loop) or `ingested` (a landed file's scoring), which the real-traffic figures leave out.
    pub source: &'static str,
    pub caller: Arc<str>,
    pub customer_id: Option<Arc<str>>,
    /// Shared by a request's champion and shadow rows; serialized as `features` by the writer.
    pub customer: Arc<Customer>,
    pub model_name: Arc<str>,
    pub model_version: i32,
    pub arm: Arm,
    pub probability: f64,
    pub label: bool,
    pub threshold: f64,
    pub latency_us: i32,
}

impl InferenceRow {
    /// Whether the log's checks accept the row: a batch holding one that does not would fail whole.
    pub fn is_valid(&self) -> bool {
        (0.0..=1.0).contains(&self.probability)
            && (0.0..=1.0).contains(&self.threshold)
            && self.label == (self.probability >= self.threshold)
            && self.item >= 0
            && ["api", "batch", "synthetic", "ingested"].contains(&self.source)
            && self.latency_us >= 0
            && (1..=100).contains(&self.caller.chars().count())
            && self
                .customer_id
                .as_ref()
                .is_none_or(|id| (1..=128).contains(&id.chars().count()))
    }
}

const COPY_INFERENCE: &str = "copy serving.inference_log (request_id, item, predicted_at, endpoint, \
    source, caller, customer_id, features, contract, internet_service, senior_citizen, model_name, \
    model_version, arm, probability, label, threshold, latency_us) from stdin (format binary)";

/// Writes `rows` with one binary COPY (one statement: all of them or none). Returns the rows written.
pub async fn copy_inference_rows(pool: &PgPool, rows: &[InferenceRow]) -> Result<u64, Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let data = encode_inference_rows(rows);
    let mut conn = pool.acquire().await?;
    let mut copy = conn.copy_in_raw(COPY_INFERENCE).await?;
    if let Err(e) = copy.send(data).await {
        let _ = copy.abort(e.to_string()).await;
        return Err(e.into());
    }
    Ok(copy.finish().await?)
}

/// PostgreSQL's binary COPY format: a header, per tuple a field count and length-prefixed fields, a
/// trailer.
fn encode_inference_rows(rows: &[InferenceRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + rows.len() * 900);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    let mut features = Vec::with_capacity(800);
    for row in rows {
        out.extend_from_slice(&18i16.to_be_bytes());
        field(&mut out, row.request_id.as_bytes());
        field(&mut out, &row.item.to_be_bytes());
        let micros = row.predicted_at.timestamp_micros() - PG_EPOCH_MICROS;
        field(&mut out, &micros.to_be_bytes());
        field(&mut out, row.endpoint.as_str().as_bytes());
        field(&mut out, row.source.as_bytes());
        field(&mut out, row.caller.as_bytes());
        match &row.customer_id {
            Some(id) => field(&mut out, id.as_bytes()),
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        // jsonb's binary form: a version byte, then the text.
        features.clear();
        features.push(1);
        // A Customer always serializes (plain fields); an empty object would still satisfy the column.
        if serde_json::to_writer(&mut features, row.customer.as_ref()).is_err() {
            features.truncate(1);
            features.extend_from_slice(b"{}");
        }
        field(&mut out, &features);
        field(&mut out, row.customer.contract.label().as_bytes());
        field(&mut out, row.customer.internet_service.label().as_bytes());
        field(&mut out, &[u8::from(row.customer.senior_citizen.is_yes())]);
        field(&mut out, row.model_name.as_bytes());
        field(&mut out, &row.model_version.to_be_bytes());
        field(&mut out, row.arm.as_str().as_bytes());
        field(&mut out, &row.probability.to_be_bytes());
        field(&mut out, &[u8::from(row.label)]);
        field(&mut out, &row.threshold.to_be_bytes());
        field(&mut out, &row.latency_us.to_be_bytes());
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    // Every field here is far below 2 GiB (a customer's JSON is under a kilobyte).
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// One outcome fed back: by request (every customer of it, or one `item`) or by the caller's customer id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutcome {
    pub request_id: Option<Uuid>,
    pub item: Option<i32>,
    pub customer_id: Option<String>,
    pub churned: bool,
    pub observed_at: DateTime<Utc>,
}

/// Inserts every outcome in one statement, so a request's outcomes are kept all or none. `source` is
/// `api` or `ingested`; `caller` names who sent them. Returns the rows inserted.
pub async fn insert_outcomes(
    pool: &PgPool,
    outcomes: &[NewOutcome],
    source: &str,
    caller: &str,
) -> Result<u64, Error> {
    let request_ids: Vec<Option<Uuid>> = outcomes.iter().map(|o| o.request_id).collect();
    let items: Vec<Option<i32>> = outcomes.iter().map(|o| o.item).collect();
    let customer_ids: Vec<Option<String>> =
        outcomes.iter().map(|o| o.customer_id.clone()).collect();
    let churned: Vec<bool> = outcomes.iter().map(|o| o.churned).collect();
    let observed_at: Vec<DateTime<Utc>> = outcomes.iter().map(|o| o.observed_at).collect();
    let done = sqlx::query!(
        "insert into serving.outcomes (request_id, item, customer_id, churned, observed_at, source, caller)
         select request_id, item, customer_id, churned, observed_at, $6, $7
         from unnest($1::uuid[], $2::int4[], $3::text[], $4::bool[], $5::timestamptz[])
             as o (request_id, item, customer_id, churned, observed_at)",
        &request_ids as &[Option<Uuid>],
        &items as &[Option<i32>],
        &customer_ids as &[Option<String>],
        &churned,
        &observed_at,
        source,
        caller,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
