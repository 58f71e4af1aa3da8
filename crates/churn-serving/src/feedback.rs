//! Outcomes fed back to the classifier (Seldon's feedback): the body's shapes, each outcome's rules, and
//! the rule that a request's outcomes are taken all or none.
//!
//! Every observation is kept with its time; when several name the same prediction, the latest
//! `observed_at` wins (the metrics job applies that rule when it joins outcomes to predictions).

use chrono::{DateTime, Duration, Utc};
use churn_core::{CUSTOMER_ID_MAX_LEN, FieldError};
use churn_store::serving::NewOutcome;
use serde_json::{Map, Value};

use crate::Error;

/// How far ahead of the classifier's clock an `observed_at` may be (clock skew, not the future).
pub const MAX_FUTURE: Duration = Duration::minutes(5);

const KEYS: [&str; 5] = [
    "request_id",
    "item",
    "customer_id",
    "churned",
    "observed_at",
];

/// Reads a feedback body: one outcome, a JSON array of them, or `{"outcomes": [...]}`; at most `max`.
/// Every invalid outcome is reported (field `outcomes[i].<name>`, its value and the rule); any error
/// refuses the whole body. `now` is when the request arrived (the default `observed_at`).
pub fn parse_outcomes(
    body: &[u8],
    max: usize,
    now: DateTime<Utc>,
) -> Result<Vec<NewOutcome>, Error> {
    let value: Value = serde_json::from_slice(body).map_err(Error::Syntax)?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut object) if object.contains_key("outcomes") => {
            if object.len() > 1 {
                return Err(Error::Shape(
                    "{\"outcomes\": [...]} takes no other key".to_owned(),
                ));
            }
            match object.remove("outcomes") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(Error::Shape(
                        "\"outcomes\" must be a JSON array of outcomes".to_owned(),
                    ));
                }
            }
        }
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(Error::Shape(
                "the body must be an outcome, a JSON array of outcomes or {\"outcomes\": [...]}"
                    .to_owned(),
            ));
        }
    };
    if items.is_empty() {
        return Err(Error::Shape("there are no outcomes".to_owned()));
    }
    if items.len() > max {
        return Err(Error::TooMany {
            count: items.len(),
            max,
        });
    }
    let mut outcomes = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match outcome(item, now) {
            Ok(o) => outcomes.push(o),
            Err(mut e) => {
                for error in &mut e {
                    error.field = format!("outcomes[{index}].{}", error.field);
                }
                errors.append(&mut e);
            }
        }
    }
    if errors.is_empty() {
        Ok(outcomes)
    } else {
        Err(Error::Invalid(errors))
    }
}

/// One outcome, or every rule it breaks.
fn outcome(item: Value, now: DateTime<Utc>) -> Result<NewOutcome, Vec<FieldError>> {
    let Value::Object(mut object) = item else {
        return Err(vec![FieldError::new(
            "$",
            item,
            "must be an object with request_id or customer_id, and churned",
        )]);
    };
    let mut errors = Vec::new();
    let unknown: Vec<String> = object
        .keys()
        .filter(|k| !KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    for key in unknown {
        errors.push(FieldError::new(
            key,
            Value::Null,
            format!("is not a field of an outcome ({})", KEYS.join(", ")),
        ));
    }
    let request_id = take(&mut object, "request_id").and_then(|v| match v.as_str() {
        Some(text) => match text.parse::<ulid::Ulid>() {
            Ok(id) => Some(uuid::Uuid::from(id)),
            Err(_) => {
                errors.push(FieldError::new(
                    "request_id",
                    v,
                    "must be a request id as the prediction returned it (a 26-character ULID)",
                ));
                None
            }
        },
        None => {
            errors.push(FieldError::new(
                "request_id",
                v,
                "must be a string (a 26-character ULID)",
            ));
            None
        }
    });
    let item = take(&mut object, "item").and_then(|v| {
        match v.as_u64().and_then(|n| i32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                errors.push(FieldError::new(
                    "item",
                    v,
                    "must be a whole number from 0 (the customer's index in its batch)",
                ));
                None
            }
        }
    });
    let customer_id = take(&mut object, "customer_id").and_then(|v| match v.as_str() {
        Some(text) if (1..=CUSTOMER_ID_MAX_LEN).contains(&text.chars().count()) => {
            Some(text.to_owned())
        }
        _ => {
            errors.push(FieldError::new(
                "customer_id",
                v,
                format!("must be a string of 1 to {CUSTOMER_ID_MAX_LEN} characters"),
            ));
            None
        }
    });
    let churned = match take(&mut object, "churned") {
        Some(Value::Bool(b)) => Some(b),
        other => {
            errors.push(FieldError::new(
                "churned",
                other.unwrap_or(Value::Null),
                "is required: true or false",
            ));
            None
        }
    };
    let observed_at = match take(&mut object, "observed_at") {
        None => Some(now),
        Some(v) => match v.as_str().map(DateTime::parse_from_rfc3339) {
            Some(Ok(at)) if at.with_timezone(&Utc) <= now + MAX_FUTURE => {
                Some(at.with_timezone(&Utc))
            }
            Some(Ok(_)) => {
                errors.push(FieldError::new(
                    "observed_at",
                    v,
                    "must not be more than 5 minutes in the future",
                ));
                None
            }
            _ => {
                errors.push(FieldError::new(
                    "observed_at",
                    v,
                    "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z",
                ));
                None
            }
        },
    };
    let named = (
        object_had(&request_id, &errors, "request_id"),
        object_had(&customer_id, &errors, "customer_id"),
    );
    match named {
        (false, false) => errors.push(FieldError::new(
            "request_id",
            Value::Null,
            "an outcome names its prediction by request_id (and item) or by customer_id",
        )),
        (true, true) => errors.push(FieldError::new(
            "customer_id",
            Value::String(customer_id.clone().unwrap_or_default()),
            "give request_id or customer_id, not both",
        )),
        _ => {}
    }
    if item.is_some() && !named.0 {
        errors.push(FieldError::new(
            "item",
            Value::from(item),
            "names a customer of a request: it needs request_id",
        ));
    }
    match (churned, observed_at) {
        (Some(churned), Some(observed_at)) if errors.is_empty() => Ok(NewOutcome {
            request_id,
            item,
            customer_id,
            churned,
            observed_at,
        }),
        _ => Err(errors),
    }
}

fn take(object: &mut Map<String, Value>, key: &str) -> Option<Value> {
    object.remove(key).filter(|v| !v.is_null())
}

/// Whether the outcome named this target (a valid value, or one already reported as invalid).
fn object_had<T>(value: &Option<T>, errors: &[FieldError], field: &str) -> bool {
    value.is_some() || errors.iter().any(|e| e.field == field)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ID: &str = "01JZ0000000000000000000000";

    fn parse(body: &str) -> Result<Vec<NewOutcome>, Error> {
        parse_outcomes(body.as_bytes(), 3, Utc::now())
    }

    fn fields(body: &str) -> Vec<String> {
        match parse(body).unwrap_err() {
            Error::Invalid(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn one_outcome_an_array_and_the_wrapped_form_are_read() {
        let one = parse(&format!(r#"{{"request_id": "{ID}", "churned": true}}"#)).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(
            one[0].request_id,
            Some(uuid::Uuid::from(ID.parse::<ulid::Ulid>().unwrap()))
        );
        assert_eq!(one[0].item, None);
        let array = parse(r#"[{"customer_id": "a", "churned": false}, {"customer_id": "b", "churned": true, "observed_at": "2026-01-01T00:00:00Z"}]"#).unwrap();
        assert_eq!(array.len(), 2);
        assert_eq!(
            array[1].observed_at.to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        let wrapped = parse(r#"{"outcomes": [{"customer_id": "a", "churned": false}]}"#).unwrap();
        assert_eq!(wrapped[0].customer_id.as_deref(), Some("a"));
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_place() {
        assert_eq!(fields(r#"[{"churned": true}]"#), ["outcomes[0].request_id"]);
        assert_eq!(
            fields(&format!(
                r#"[{{"request_id": "{ID}", "customer_id": "a", "churned": true}}]"#
            )),
            ["outcomes[0].customer_id"]
        );
        assert_eq!(
            fields(
                r#"[{"customer_id": "a", "churned": true}, {"request_id": "nope", "item": -1, "churned": "yes", "observed_at": "yesterday", "x": 1}]"#
            ),
            [
                "outcomes[1].x",
                "outcomes[1].request_id",
                "outcomes[1].item",
                "outcomes[1].churned",
                "outcomes[1].observed_at"
            ]
        );
        assert_eq!(
            fields(r#"[{"customer_id": "a", "item": 2, "churned": true}]"#),
            ["outcomes[0].item"]
        );
        let future = (Utc::now() + Duration::minutes(10)).to_rfc3339();
        assert_eq!(
            fields(&format!(
                r#"{{"customer_id": "a", "churned": true, "observed_at": "{future}"}}"#
            )),
            ["outcomes[0].observed_at"]
        );
        assert_eq!(
            fields(&format!(
                r#"{{"customer_id": "{}", "churned": true}}"#,
                "x".repeat(129)
            )),
            ["outcomes[0].customer_id"]
        );
    }

    #[test]
    fn the_body_shape_and_count_are_checked_first() {
        assert!(matches!(parse("[]"), Err(Error::Shape(_))));
        assert!(matches!(parse("3"), Err(Error::Shape(_))));
        assert!(matches!(parse("{\"outcomes\": 1}"), Err(Error::Shape(_))));
        assert!(matches!(parse("[1"), Err(Error::Syntax(_))));
        let four = r#"[{"customer_id":"a","churned":true},{"customer_id":"a","churned":true},{"customer_id":"a","churned":true},{"customer_id":"a","churned":true}]"#;
        assert!(matches!(
            parse(four),
            Err(Error::TooMany { count: 4, max: 3 })
        ));
    }
}
