//! Writes logged predictions into `serving.inference_log` by binary COPY and feedback into
//! `serving.outcomes`: what tests and the metrics benchmark feed the cohort metrics with.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::copy::PG_EPOCH_MICROS;
use crate::Error;

/// One row of `serving.inference_log`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedPrediction {
    pub request_id: Uuid,
    pub item: i32,
    pub predicted_at: DateTime<Utc>,
    /// `predict`, `explain`, `batch` or `stream`.
    pub endpoint: &'static str,
    /// `api` or `batch`.
    pub source: &'static str,
    pub caller: String,
    pub customer_id: Option<String>,
    pub features: Value,
    pub contract: String,
    pub internet_service: String,
    pub senior_citizen: bool,
    pub model_name: String,
    pub model_version: i32,
    /// `champion`, `canary` or `shadow`.
    pub arm: &'static str,
    pub probability: f64,
    pub label: bool,
    pub threshold: f64,
    pub latency_us: i32,
}

const COPY_LOG: &str = "copy serving.inference_log (request_id, item, predicted_at, endpoint, source, \
    caller, customer_id, features, contract, internet_service, senior_citizen, model_name, \
    model_version, arm, probability, label, threshold, latency_us) from stdin (format binary)";

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn encode(out: &mut Vec<u8>, r: &LoggedPrediction) {
    out.extend_from_slice(&18i16.to_be_bytes());
    field(out, r.request_id.as_bytes());
    field(out, &r.item.to_be_bytes());
    field(
        out,
        &(r.predicted_at.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes(),
    );
    field(out, r.endpoint.as_bytes());
    field(out, r.source.as_bytes());
    field(out, r.caller.as_bytes());
    match &r.customer_id {
        Some(id) => field(out, id.as_bytes()),
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
    // jsonb's binary form: a version byte (1), then the text.
    let mut json = vec![1u8];
    json.extend_from_slice(r.features.to_string().as_bytes());
    field(out, &json);
    field(out, r.contract.as_bytes());
    field(out, r.internet_service.as_bytes());
    field(out, &[u8::from(r.senior_citizen)]);
    field(out, r.model_name.as_bytes());
    field(out, &r.model_version.to_be_bytes());
    field(out, r.arm.as_bytes());
    field(out, &r.probability.to_be_bytes());
    field(out, &[u8::from(r.label)]);
    field(out, &r.threshold.to_be_bytes());
    field(out, &r.latency_us.to_be_bytes());
}

/// Writes logged predictions by binary COPY inside the caller's connection or transaction; returns how
/// many rows were written.
pub async fn insert_inference_log(
    conn: &mut PgConnection,
    rows: &[LoggedPrediction],
) -> Result<u64, Error> {
    let mut copy = conn.copy_in_raw(COPY_LOG).await?;
    let mut buf = Vec::with_capacity(1 << 20);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    for r in rows {
        encode(&mut buf, r);
        if buf.len() >= 1 << 20 {
            copy.send(std::mem::take(&mut buf)).await?;
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buf).await?;
    Ok(copy.finish().await?)
}

/// One observed outcome for `serving.outcomes`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutcome {
    pub request_id: Option<Uuid>,
    pub item: Option<i32>,
    pub customer_id: Option<String>,
    pub churned: bool,
    pub observed_at: DateTime<Utc>,
    /// `api` or `ingested`.
    pub source: &'static str,
    pub caller: String,
}

/// Stores outcomes in the given order (their ids follow it); returns how many.
pub async fn insert_outcomes(conn: &mut PgConnection, rows: &[NewOutcome]) -> Result<u64, Error> {
    Ok(sqlx::query!(
        "insert into serving.outcomes (request_id, item, customer_id, churned, observed_at, source,
             caller)
         select request_id, item, customer_id, churned, observed_at, source, caller
         from unnest($1::uuid[], $2::int4[], $3::text[], $4::bool[], $5::timestamptz[], $6::text[],
                     $7::text[]) with ordinality
              as o(request_id, item, customer_id, churned, observed_at, source, caller, n)
         order by n",
        &rows.iter().map(|r| r.request_id).collect::<Vec<_>>() as &[Option<Uuid>],
        &rows.iter().map(|r| r.item).collect::<Vec<_>>() as &[Option<i32>],
        &rows
            .iter()
            .map(|r| r.customer_id.clone())
            .collect::<Vec<_>>() as &[Option<String>],
        &rows.iter().map(|r| r.churned).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.observed_at).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.source).collect::<Vec<_>>() as &[&str],
        &rows.iter().map(|r| r.caller.clone()).collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?
    .rows_affected())
}
