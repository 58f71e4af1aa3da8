//! Validation errors that name the field, the value given and the rule it broke.

use serde::Serialize;
use serde_json::Value;

/// Tenure is accepted up to ten years.
pub const MAX_TENURE_MONTHS: u32 = 120;
/// Monthly charges are accepted up to this: far above any real bill, far below the warehouse's
/// `numeric(10,2)` limit, so a typo (an extra few zeros) is an error here, not a failed insert later.
pub const MAX_MONTHLY_CHARGES: f64 = 10_000.0;
/// Total charges are accepted up to ten years of the largest monthly bill.
pub const MAX_TOTAL_CHARGES: f64 = MAX_MONTHLY_CHARGES * MAX_TENURE_MONTHS as f64;
/// Free-text fields (country, state, city) longer than this are rejected.
pub const MAX_TEXT_LEN: usize = 100;

/// One broken rule of one field.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The field's snake_case name (or the unknown key as given).
    pub field: String,
    /// The value as received; `null` when the field was missing.
    pub value: Value,
    /// What the value must satisfy.
    pub rule: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, value: Value, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value,
            rule: rule.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_null() {
            write!(f, "{}: {}", self.field, self.rule)
        } else {
            write!(f, "{} = {}: {}", self.field, self.value, self.rule)
        }
    }
}

/// Every problem found in one record; never empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The error for `field`, if that field broke a rule.
    pub fn for_field(&self, field: &str) -> Option<&FieldError> {
        self.0.iter().find(|e| e.field == field)
    }
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Unknown keys echoed in a record's errors, at most: a body of thousands of unknown keys gets a short
/// answer, not a copy of itself.
pub const MAX_ECHOED_UNKNOWN_KEYS: usize = 16;
/// Longest value (in characters) echoed for an unknown key; longer ones are cut.
const MAX_ECHOED_VALUE_CHARS: usize = 64;

/// Collects unknown-key errors, listing the first [`MAX_ECHOED_UNKNOWN_KEYS`] with short values and
/// counting the rest.
#[derive(Debug, Default)]
pub(crate) struct UnknownKeys {
    listed: usize,
    more: usize,
}

impl UnknownKeys {
    pub(crate) fn push(&mut self, errors: &mut Vec<FieldError>, key: &str, value: Value) {
        if self.listed == MAX_ECHOED_UNKNOWN_KEYS {
            self.more += 1;
            return;
        }
        self.listed += 1;
        let mut key = key.to_owned();
        if key.chars().count() > MAX_ECHOED_VALUE_CHARS {
            key = key.chars().take(MAX_ECHOED_VALUE_CHARS).collect::<String>() + "…";
        }
        errors.push(FieldError::new(
            key,
            echo(value),
            "is not a customer field (expected snake_case names such as tenure_months)",
        ));
    }

    pub(crate) fn finish(self, errors: &mut Vec<FieldError>) {
        if self.more > 0 {
            errors.push(FieldError::new(
                "$",
                Value::from(self.more),
                format!(
                    "more unknown keys were given than are listed here ({} listed, {} more)",
                    self.listed, self.more
                ),
            ));
        }
    }
}

/// A short stand-in for an echoed value: long strings are cut, arrays and objects summarized.
fn echo(value: Value) -> Value {
    match value {
        Value::String(s) if s.chars().count() > MAX_ECHOED_VALUE_CHARS => {
            Value::String(s.chars().take(MAX_ECHOED_VALUE_CHARS).collect::<String>() + "…")
        }
        Value::Array(items) => Value::String(format!("<array of {}>", items.len())),
        Value::Object(map) => Value::String(format!("<object of {} keys>", map.len())),
        other => other,
    }
}

/// The JSON type of a value, as an error names it ("must be a JSON object", not the value itself).
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
