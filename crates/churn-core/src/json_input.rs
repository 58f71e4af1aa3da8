//! Reading a customer straight from JSON bytes: keys and string values are borrowed from the input and
//! dropped into the record's slots as they come, with no intermediate map. The rules are those of
//! [`Customer::from_json`]; this is the fast path of the prediction endpoints.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::customer::{Customer, Raw};
use crate::field::{Field, Key};
use crate::validation::{FieldError, UnknownKeys, ValidationErrors};

/// Re-exported where the JSON reader is: it bounds what a JSON body gets echoed back.
pub use crate::validation::MAX_ECHOED_UNKNOWN_KEYS;

/// Why a JSON body is not a valid customer.
#[derive(Debug)]
pub enum JsonInputError {
    /// Not JSON at all (a 400 for an API).
    Syntax(serde_json::Error),
    /// JSON, but not a valid customer: every problem, each with field, value and rule (a 422).
    Invalid(ValidationErrors),
}

/// A field's value as read: borrowed text when it was a JSON string, the JSON value otherwise.
enum Slot<'de> {
    Text(Cow<'de, str>),
    Json(Value),
}

struct SlotVisitor;

impl<'de> Visitor<'de> for SlotVisitor {
    type Value = Slot<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Slot::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Slot::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Slot::Text(Cow::Owned(v)))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Slot::Json(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Slot::Json(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Slot::Json(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Slot::Json(Value::from(v)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Slot::Json(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Slot::Json(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        serde::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Slot::Json)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map)).map(Slot::Json)
    }
}

impl<'de> serde::Deserialize<'de> for Slot<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SlotVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

/// The slots of one record plus the key-level errors (unknown or repeated keys, not an object).
struct Collected<'de> {
    slots: [Option<(Cow<'de, str>, Slot<'de>)>; Field::ALL.len()],
    errors: Vec<FieldError>,
}

struct RecordVisitor;

impl RecordVisitor {
    fn not_an_object<'de>(kind: &str) -> Collected<'de> {
        Collected {
            slots: std::array::from_fn(|_| None),
            errors: vec![FieldError::new(
                "$",
                Value::String(kind.to_owned()),
                "must be a JSON object of customer fields",
            )],
        }
    }
}

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Collected<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of customer fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut collected = Collected {
            slots: std::array::from_fn(|_| None),
            errors: Vec::new(),
        };
        let mut unknown = UnknownKeys::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match Field::lookup(&key) {
                Key::Field(field) => {
                    let value: Slot<'de> = map.next_value()?;
                    let slot = &mut collected.slots[field.index()];
                    if let Some((first, _)) = slot {
                        collected.errors.push(FieldError::new(
                            field.name(),
                            Value::String(key.clone().into_owned()),
                            format!("is given twice (as {first:?} and {key:?})"),
                        ));
                    } else {
                        *slot = Some((key, value));
                    }
                }
                Key::Ignored => {
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Unknown => {
                    let value: Value = match map.next_value::<Slot<'de>>()? {
                        Slot::Text(t) => Value::String(t.into_owned()),
                        Slot::Json(v) => v,
                    };
                    unknown.push(&mut collected.errors, &key, value);
                }
            }
        }
        unknown.finish(&mut collected.errors);
        Ok(collected)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::not_an_object("array"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("string"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("boolean"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("number"))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Self::not_an_object("null"))
    }
}

impl Customer {
    /// Parses one customer from JSON bytes without building an intermediate map. Keys, aliases, ignored
    /// keys and every rule are those of [`Customer::from_json`].
    pub fn from_json_slice(bytes: &[u8]) -> Result<Customer, JsonInputError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let collected = de
            .deserialize_any(RecordVisitor)
            .map_err(JsonInputError::Syntax)?;
        de.end().map_err(JsonInputError::Syntax)?;
        if collected.errors.first().is_some_and(|e| e.field == "$") {
            return Err(JsonInputError::Invalid(ValidationErrors(collected.errors)));
        }
        let slots = &collected.slots;
        Customer::parse_with(
            |f| match &slots[f.index()] {
                Some((_, Slot::Text(t))) => Raw::JsonStr(t),
                Some((_, Slot::Json(v))) => Raw::Json(v),
                None => Raw::Missing,
            },
            collected.errors.clone(),
        )
        .map_err(JsonInputError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body() -> serde_json::Value {
        serde_json::json!({
            "country": "United States", "state": "California", "city": "Los \"Angeles\"", "zip_code": 90003,
            "latitude": 33.964131, "longitude": -118.272783, "gender": "Male", "senior_citizen": false,
            "Partner": "No", "Dependents": "No", "Tenure_Months": 2, "phone_service": "Yes",
            "multiple_lines": "No", "internet_service": "DSL", "online_security": "Yes",
            "online_backup": "Yes", "device_protection": "No", "tech_support": "No", "streaming_tv": "No",
            "streaming_movies": "No", "contract": "Month-to-month", "paperless_billing": "Yes",
            "payment_method": "Mailed check", "monthly_charges": 53.85, "total_charges": 108.15,
            "CustomerID": "3668-QPYBK", "Lat_Long": [1, 2]
        })
    }

    #[test]
    fn bytes_and_json_values_give_the_same_customer() {
        let value = body();
        let bytes = serde_json::to_vec(&value).unwrap();
        assert_eq!(
            Customer::from_json_slice(&bytes).unwrap(),
            Customer::from_json(&value).unwrap()
        );
    }

    #[test]
    fn bytes_and_json_values_give_the_same_errors() {
        let mut value = body();
        value["tenure_months"] = serde_json::json!(3);
        value["gender"] = serde_json::json!({"x": 1});
        value["bogus"] = serde_json::json!("y");
        let bytes = serde_json::to_vec(&value).unwrap();
        let JsonInputError::Invalid(from_bytes) = Customer::from_json_slice(&bytes).unwrap_err()
        else {
            panic!("invalid, not a syntax error")
        };
        let from_value = Customer::from_json(&value).unwrap_err();
        let sorted = |e: &ValidationErrors| {
            let mut v: Vec<String> = e.iter().map(|e| e.field.clone() + &e.rule).collect();
            v.sort();
            v
        };
        assert_eq!(sorted(&from_bytes), sorted(&from_value));
    }

    #[test]
    fn syntax_errors_and_non_objects_are_told_apart() {
        assert!(matches!(
            Customer::from_json_slice(b"{\"a\": "),
            Err(JsonInputError::Syntax(_))
        ));
        assert!(matches!(
            Customer::from_json_slice(b"{} x"),
            Err(JsonInputError::Syntax(_))
        ));
        let JsonInputError::Invalid(e) = Customer::from_json_slice(b"[1, 2]").unwrap_err() else {
            panic!("invalid")
        };
        assert_eq!(e.0[0].field, "$");
    }
}
