//! The rows a served request leaves in the inference log: built only when the log keeps the request,
//! handed to its queue without waiting.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use churn_core::Customer;
use churn_service::auth::{ANONYMOUS, Caller};
use churn_store::serving::{Arm, Endpoint, InferenceRow};
use ulid::Ulid;

use crate::Served;

/// A customer of the request: its place, its features and the caller's id for it.
#[derive(Debug)]
pub struct Item {
    pub index: usize,
    pub customer: Arc<Customer>,
    pub customer_id: Option<Arc<str>>,
}

/// What a request's rows share.
#[derive(Debug)]
pub struct Request {
    pub id: Ulid,
    pub endpoint: Endpoint,
    /// The endpoint's source, or the one a batch's caller declared (`synthetic`, `ingested`).
    pub source: &'static str,
    pub caller: Arc<str>,
    pub started: Instant,
    pub predicted_at: DateTime<Utc>,
}

impl Request {
    pub fn new(id: Ulid, endpoint: Endpoint, caller: Option<Caller>) -> Self {
        Self {
            id,
            endpoint,
            source: endpoint.source(),
            caller: caller.map_or_else(|| ANONYMOUS.into(), |c| c.0),
            started: Instant::now(),
            predicted_at: Utc::now(),
        }
    }

    /// The request's id as the body and the log carry it.
    pub fn id_text(&self) -> String {
        self.id.to_string()
    }

    /// Microseconds since the body was read, as the log's `latency_us`.
    pub fn latency_us(&self) -> i32 {
        i32::try_from(self.started.elapsed().as_micros()).unwrap_or(i32::MAX)
    }

    /// One customer scored by one arm.
    pub fn row(
        &self,
        item: &Item,
        served: &Served,
        arm: Arm,
        probability: f64,
        latency_us: i32,
    ) -> InferenceRow {
        InferenceRow {
            request_id: uuid::Uuid::from(self.id),
            item: i32::try_from(item.index).unwrap_or(i32::MAX),
            predicted_at: self.predicted_at,
            endpoint: self.endpoint,
            source: self.source,
            caller: self.caller.clone(),
            customer_id: item.customer_id.clone(),
            customer: item.customer.clone(),
            model_name: served.name.as_str().into(),
            model_version: served.version,
            arm,
            probability,
            label: served.model.label(probability),
            threshold: served.model.threshold(),
            latency_us,
        }
    }
}
