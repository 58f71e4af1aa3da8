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
    /// The caller's own id for the customer (`customer_id`, `CustomerID`, `Customer ID`), as sent.
    customer_id: Option<Slot<'de>>,
}

/// The longest business customer id kept with a prediction (the inference log's check says the same).
pub const CUSTOMER_ID_MAX_LEN: usize = 128;

/// Whether an ignored key is the caller's customer id (any spelling that normalizes to it).
fn is_customer_id_key(key: &str) -> bool {
    matches!(
        crate::category::normalize_name(key).as_str(),
        "customer_id" | "customerid"
    )
}

struct RecordVisitor;

impl RecordVisitor {
    fn not_an_object<'de>(kind: &str) -> Collected<'de> {
        Collected {
            slots: std::array::from_fn(|_| None),
            customer_id: None,
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
            customer_id: None,
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
                Key::Ignored if is_customer_id_key(&key) => {
                    let value: Slot<'de> = map.next_value()?;
                    if collected.customer_id.is_some() {
                        collected.errors.push(FieldError::new(
                            "customer_id",
                            Value::String(key.into_owned()),
                            "is given twice (customer_id, CustomerID and Customer ID name the same id)",
                        ));
                    } else {
                        collected.customer_id = Some(value);
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
        Self::from_collected(collected, Vec::new())
    }

    /// [`Customer::from_json_slice`], also returning the caller's own id for the customer when the
    /// object has one (`customer_id`, `CustomerID` or `Customer ID`): a string of 1 to
    /// [`CUSTOMER_ID_MAX_LEN`] characters, else an error for `customer_id` beside the fields' errors.
    pub fn from_json_slice_with_id(
        bytes: &[u8],
    ) -> Result<(Customer, Option<String>), JsonInputError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let mut collected = de
            .deserialize_any(RecordVisitor)
            .map_err(JsonInputError::Syntax)?;
        de.end().map_err(JsonInputError::Syntax)?;
        let mut errors = Vec::new();
        let id = match collected.customer_id.take() {
            None => None,
            Some(Slot::Text(t)) if (1..=CUSTOMER_ID_MAX_LEN).contains(&t.chars().count()) => {
                Some(t.into_owned())
            }
            Some(slot) => {
                let value = match slot {
                    Slot::Text(t) => Value::String(t.into_owned()),
                    Slot::Json(v) => v,
                };
                errors.push(FieldError::new(
                    "customer_id",
                    value,
                    format!("must be a string of 1 to {CUSTOMER_ID_MAX_LEN} characters"),
                ));
                None
            }
        };
        Self::from_collected(collected, errors).map(|c| (c, id))
    }

    fn from_collected(
        collected: Collected<'_>,
        mut extra: Vec<FieldError>,
    ) -> Result<Customer, JsonInputError> {
        if collected.errors.first().is_some_and(|e| e.field == "$") {
            return Err(JsonInputError::Invalid(ValidationErrors(collected.errors)));
        }
        let Collected {
            slots, mut errors, ..
        } = collected;
        errors.append(&mut extra);
        Customer::parse_with(
            |f| match &slots[f.index()] {
                Some((_, Slot::Text(t))) => Raw::JsonStr(t),
                Some((_, Slot::Json(v))) => Raw::Json(v),
                None => Raw::Missing,
            },
            errors,
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

    #[test]
    fn the_callers_customer_id_is_read_under_any_of_its_spellings_and_bounded() {
        for key in ["customer_id", "CustomerID", "Customer ID"] {
            let mut value = body();
            value.as_object_mut().unwrap().remove("CustomerID");
            value[key] = serde_json::json!("7590-VHVEG");
            let bytes = serde_json::to_vec(&value).unwrap();
            let (_, id) = Customer::from_json_slice_with_id(&bytes).unwrap();
            assert_eq!(id.as_deref(), Some("7590-VHVEG"), "{key}");
        }
        let mut value = body();
        value.as_object_mut().unwrap().remove("CustomerID");
        let bytes = serde_json::to_vec(&value).unwrap();
        assert_eq!(Customer::from_json_slice_with_id(&bytes).unwrap().1, None);
        for bad in [
            serde_json::json!(""),
            serde_json::json!("x".repeat(129)),
            serde_json::json!(42),
        ] {
            let mut value = body();
            value["CustomerID"] = bad.clone();
            let bytes = serde_json::to_vec(&value).unwrap();
            let JsonInputError::Invalid(e) = Customer::from_json_slice_with_id(&bytes).unwrap_err()
            else {
                panic!("invalid")
            };
            assert_eq!(e.0[0].field, "customer_id");
            assert_eq!(e.0[0].value, bad);
            assert!(e.0[0].rule.contains("1 to 128"), "{}", e.0[0].rule);
        }
        let mut value = body();
        value["customer_id"] = serde_json::json!("again");
        let bytes = serde_json::to_vec(&value).unwrap();
        assert!(Customer::from_json_slice_with_id(&bytes).is_err());
    }
}
