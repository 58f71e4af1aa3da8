//! `POST /feedback`: what became of the customers the classifier scored (Seldon's feedback API).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use churn_service::auth::{ANONYMOUS, Caller};
use churn_service::error::json_syntax;
use churn_service::{ApiError, ApiJson, JsonBody};
use serde_json::json;

use crate::AppState;

/// An outcome named by the prediction's request id: it judges every customer of that request, or only
/// `item`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // the documented shape; the body is read by churn_serving::feedback
#[serde(deny_unknown_fields)]
pub struct OutcomeByRequest {
    /// The `request_id` a prediction returned (a 26-character ULID).
    #[schema(
        example = "01JZ3Q6W9R8T2M4K5N7P0X1Y2Z",
        pattern = "^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
    )]
    request_id: String,
    /// A customer's index in its batch (`results[].index`).
    #[schema(minimum = 0, maximum = 2147483647)]
    item: Option<u32>,
    /// Whether the customer churned.
    churned: bool,
    /// When the outcome was observed (RFC 3339); now when left out; at most 5 minutes ahead.
    observed_at: Option<chrono::DateTime<Utc>>,
}

/// An outcome named by the caller's own customer id, as sent with predictions (`customer_id`,
/// `CustomerID` or `Customer ID`): it judges every logged prediction with that id.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct OutcomeByCustomer {
    #[schema(min_length = 1, max_length = 128)]
    customer_id: String,
    /// Whether the customer churned.
    churned: bool,
    /// When the outcome was observed (RFC 3339); now when left out; at most 5 minutes ahead.
    observed_at: Option<chrono::DateTime<Utc>>,
}

/// One outcome.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum Outcome {
    ByRequest(OutcomeByRequest),
    ByCustomer(OutcomeByCustomer),
}

/// A feedback body: one outcome, an array of them, or `{"outcomes": [...]}`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum FeedbackBody {
    One(Outcome),
    Many(Vec<Outcome>),
    Wrapped { outcomes: Vec<Outcome> },
}

/// How many outcomes were kept.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FeedbackAccepted {
    pub accepted: u64,
}

/// `POST /feedback`: outcomes of predictions, all kept or none.
#[utoipa::path(post, path = "/feedback", tag = "feedback", request_body = FeedbackBody,
    description = "Records what became of scored customers. Every observation is kept with its \
        `observed_at` and the caller's key name; repeated or conflicting outcomes for the same \
        prediction are all kept, and the latest `observed_at` wins when metrics are computed \
        (outcomes by customer_id judge every logged prediction with that id). A request's outcomes \
        are validated together and stored in one statement: every invalid outcome is reported \
        (field `outcomes[i].<name>`, its value and the rule) and none is kept, or all are. At most \
        FEEDBACK_MAX_BATCH outcomes a request. A request id is not checked against the log (the \
        classifier cannot read it): an outcome for an unknown id is kept and judges nothing.",
    responses(
        (status = 202, description = "Every outcome kept", body = FeedbackAccepted),
        (status = 400, description = "Malformed JSON", body = churn_service::ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = churn_service::ErrorBody),
        (status = 413, description = "Body too large", body = churn_service::ErrorBody),
        (status = 415, description = "Not JSON", body = churn_service::ErrorBody),
        (status = 422, description = "Not an outcome or a list of them, more than FEEDBACK_MAX_BATCH, or invalid outcomes (each field with its value and rule); nothing kept", body = churn_service::ErrorBody),
        (status = 503, description = "The database is unreachable; nothing kept", body = churn_service::ErrorBody),
    ))]
pub async fn feedback(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, ApiJson<FeedbackAccepted>), ApiError> {
    let outcomes = churn_serving::parse_outcomes(&body, state.feedback_max_batch, Utc::now())
        .map_err(refused)?;
    let caller = caller.map_or_else(|| ANONYMOUS.into(), |Extension(c)| c.0);
    let accepted = churn_serving::store_outcomes(&state.infra.pool, &outcomes, &caller)
        .await
        .map_err(|e| {
            ApiError::unavailable_because("the outcomes could not be stored; none was kept", e)
        })?;
    Ok((StatusCode::ACCEPTED, ApiJson(FeedbackAccepted { accepted })))
}

fn refused(e: churn_serving::Error) -> ApiError {
    match e {
        churn_serving::Error::Syntax(e) => json_syntax(&e),
        churn_serving::Error::Invalid(errors) => ApiError::invalid(
            format!(
                "{} outcome field(s) are invalid; no outcome was kept",
                errors.len()
            ),
            json!({ "errors": errors }),
        ),
        churn_serving::Error::TooMany { count, max } => ApiError::invalid(
            e.to_string(),
            json!({ "outcomes": count, "max_batch": max }),
        ),
        other => ApiError::invalid(other.to_string(), json!({})),
    }
}

/// States 1 to FEEDBACK_MAX_BATCH as the feedback body's array bounds.
pub fn set_feedback_limit(document: &mut serde_json::Value, max: usize) {
    let Some(variants) = document
        .pointer_mut("/components/schemas/FeedbackBody/oneOf")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return;
    };
    for variant in variants {
        let array = if variant["type"] == "array" {
            Some(variant)
        } else {
            variant.pointer_mut("/properties/outcomes")
        };
        if let Some(array) = array.and_then(serde_json::Value::as_object_mut) {
            array.insert("minItems".to_owned(), json!(1));
            array.insert("maxItems".to_owned(), json!(max));
        }
    }
}
