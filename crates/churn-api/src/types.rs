//! Request and response bodies of the classifier and synthesizer APIs.

use chrono::{DateTime, Utc};
use churn_core::metrics::Metrics;
use churn_core::{FieldError, YesNo};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The JSON body of every error response: `{error, details}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong, in one sentence, and what to do about it.
    pub error: String,
    /// Specifics: the invalid fields, the limit exceeded, …
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Value,
}

/// One field's contribution to a prediction, in log-odds (positive pushes towards churn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contribution {
    pub field: String,
    pub contribution: f64,
}

/// A prediction for one customer (`POST /predict`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prediction {
    /// The request's id (a ULID), also in the `X-Request-Id` header and in the inference log; feedback
    /// names the prediction by it.
    #[serde(default)]
    pub request_id: String,
    /// "Yes" when P(churn) ≥ the model's threshold.
    pub predicted_churn_label: YesNo,
    /// P(churn), calibrated.
    pub churn_probability: f64,
    /// Probability of the predicted label: max(p, 1 − p) around the threshold's side.
    pub confidence: f64,
    /// The decision threshold stored with the model.
    pub threshold: f64,
    pub model_name: String,
    pub model_version: i32,
    pub predicted_at: DateTime<Utc>,
    /// With `?explain=true`: the fields that moved this prediction most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Vec<Contribution>>,
}

/// Whether a batch item was scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Ok,
    Invalid,
}

/// One item of a batch answer: a prediction, or the item's errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchItem {
    /// Position in the request.
    pub index: usize,
    pub status: ItemStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_churn_label: Option<YesNo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn_probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// The answer to `POST /predict/batch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchPrediction {
    /// The request's id (a ULID), also in the `X-Request-Id` header and in the inference log, where
    /// each customer is an `item` (its index here).
    #[serde(default)]
    pub request_id: String,
    pub model_name: String,
    pub model_version: i32,
    pub threshold: f64,
    pub predicted_at: DateTime<Utc>,
    pub valid: usize,
    pub invalid: usize,
    /// One item per customer, in request order.
    pub results: Vec<BatchItem>,
    /// With `?shadow=true` and a shadow model loaded (the registry's challenger): its predictions for
    /// the same customers, which callers store beside the champion's but never act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowPrediction>,
}

/// A shadow model's predictions for a batch (`POST /predict/batch?shadow=true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShadowPrediction {
    pub model_name: String,
    pub model_version: i32,
    pub threshold: f64,
    /// P(churn) per request item, in order; `null` for an invalid item.
    pub churn_probabilities: Vec<Option<f64>>,
}

/// How much one customer field matters to the served model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureImportance {
    pub field: String,
    /// Drop in ROC AUC when the field's values are shuffled across rows.
    pub importance: f64,
}

/// The served model (`GET /model`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelInfo {
    pub model_name: String,
    pub model_version: i32,
    pub artifact_sha256: Option<String>,
    pub loaded_at: DateTime<Utc>,
    pub family: String,
    pub threshold: f64,
    /// Permutation importance by customer field, most important first.
    pub feature_importance: Vec<FeatureImportance>,
    /// Out-of-fold metrics of the chosen model at its threshold.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub cv_metrics: Metrics,
}

/// Query parameters of `GET /synthesize`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct SynthesizeParams {
    /// Number of records, 1 to SYNTHESIZE_MAX_ROWS. Absent: one record as a JSON object. Present: a JSON
    /// array (or NDJSON).
    #[cfg_attr(feature = "openapi", param(minimum = 1))]
    pub n: Option<u64>,
    /// Seed; the same seed gives the same records. Absent: a random seed, echoed in `x-seed`.
    pub seed: Option<u64>,
    /// `json` (default) or `ndjson`; `Accept: application/x-ndjson` also selects NDJSON.
    pub format: Option<SynthesizeFormat>,
}

/// How `GET /synthesize` writes its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SynthesizeFormat {
    #[default]
    Json,
    Ndjson,
}

/// The body of `POST /predict/batch`: an array of customers (or `{"customers": [...]}`), 1 to
/// PREDICT_MAX_BATCH of them. Items are checked one by one: an invalid item fails only its own result,
/// so any JSON value is a valid item here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CustomerBatch {
    Customers(Vec<Value>),
    Wrapped { customers: Vec<Value> },
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for CustomerBatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
        };
        let items = || -> Schema {
            ArrayBuilder::new()
                .items(
                    ObjectBuilder::new()
                        .schema_type(SchemaType::AnyValue)
                        .description(Some(
                            "A customer (see the Customer schema); any value is accepted here, and \
                             an invalid one is reported in its own result",
                        )),
                )
                .min_items(Some(1))
                .max_items(Some(BATCH_LIMIT_PLACEHOLDER))
                .into()
        };
        OneOfBuilder::new()
            .item(items())
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .property("customers", items())
                    .required("customers")
                    .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::<
                        Schema,
                    >::FreeForm(false))),
            )
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for CustomerBatch {}

/// The `maxItems` the batch schema is built with; the classifier replaces it with its PREDICT_MAX_BATCH
/// in the document it serves.
pub const BATCH_LIMIT_PLACEHOLDER: usize = 1000;

/// The JSON answer of `GET /synthesize`: one customer without `n`, an array of `n` customers with it.
#[derive(Debug, Clone, Copy)]
pub struct SynthesizeAnswer;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for SynthesizeAnswer {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
        let customer = utoipa::openapi::Ref::from_schema_name("Customer");
        OneOfBuilder::new()
            .item(customer.clone())
            .item(ArrayBuilder::new().items(customer).min_items(Some(1)))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for SynthesizeAnswer {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            "Customer".to_owned(),
            <churn_core::Customer as utoipa::PartialSchema>::schema(),
        ));
    }
}

/// One run of a scheduler job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobRunBody {
    pub job_run_id: uuid::Uuid,
    pub job_name: String,
    /// schedule, manual or event.
    pub trigger: String,
    /// running, succeeded, failed or skipped.
    pub status: String,
    /// The attempt the run is on (or ended on).
    pub attempt: i32,
    /// The scheduler replica that ran it.
    pub host: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    pub rows_affected: Option<i64>,
    pub error: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Value,
}

/// A scheduler job and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobInfo {
    pub name: String,
    /// A cron expression with seconds, `continuous` or `manual`.
    pub schedule: String,
    pub enabled: bool,
    pub paused: bool,
    pub timeout_seconds: u64,
    pub retries: u32,
    pub last_run: Option<JobRunBody>,
    /// The next scheduled tick (cron jobs that are enabled and not paused).
    pub next_run: Option<DateTime<Utc>>,
}

/// A page of a job's runs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunsPage {
    pub runs: Vec<JobRunBody>,
    pub limit: i64,
    pub offset: i64,
    /// The offset of the next page, when there may be one.
    pub next_offset: Option<i64>,
}

/// The answer to `POST /jobs/{name}/run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TriggeredRun {
    pub job_name: String,
    pub job_run_id: uuid::Uuid,
}

/// The answer to pausing or resuming a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobPaused {
    pub job_name: String,
    pub paused: bool,
}

/// One manual action in the audit log (`GET /audit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntryBody {
    pub audit_id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    /// The scope of the token that authorized it: `admin`, `registry`, `read` or `cli`.
    pub token_scope: String,
    /// The name the caller gave (X-Actor, or HTTP Basic's user name), else the scope.
    pub actor: String,
    /// `job.trigger`, `job.pause`, `job.resume`, `alias.set`, `alias.delete` or `model.promote`.
    pub action: String,
    /// A job's name, or `MODEL@ALIAS`.
    pub target: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}

/// The answer to `POST /ingest` of a file ingested in the background (202).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestAccepted {
    /// The file's id in `ops.ingested_files`.
    pub file_id: uuid::Uuid,
    pub object_key: String,
    pub sha256: String,
    /// Where to poll: `/ingest/files/{file_id}`.
    pub location: String,
}

/// A landed file's state (`GET /ingest/files/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestedFileBody {
    pub file_id: uuid::Uuid,
    /// The key it was claimed under.
    pub object_key: String,
    pub sha256: String,
    /// `processing`, `processed` or `failed`.
    pub status: String,
    pub rows_total: i64,
    pub rows_accepted: i64,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_rejected: i64,
    /// Why it failed.
    pub reason: Option<String>,
    /// Where the object was moved once done (`processed/…`, `failed/…`).
    pub final_key: Option<String>,
}
