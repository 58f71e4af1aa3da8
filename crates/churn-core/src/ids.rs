//! The platform's identifiers as types, so a customer key, a model version number and a run id cannot be
//! passed for one another. Each reads and writes the same text and JSON as the bare value it wraps.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;

/// A customer's key (`churn.customers.customer_id`): a ULID stored as a uuid, so keys sort by creation
/// time. Written in the uuid's hyphenated form, as the database and the APIs show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
pub struct CustomerId(Uuid);

impl CustomerId {
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

/// A run's id (`registry.runs.run_id`), a uuid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
pub struct RunId(Uuid);

impl RunId {
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

/// The number of a registered model's version (`registry.model_versions.version`), from 1. Named for the
/// number because the registry's `ModelVersion` is the whole version record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
pub struct VersionNumber(i32);

impl VersionNumber {
    /// A version number, refusing 0 and negatives (the registry counts from 1).
    pub fn new(number: i32) -> Result<Self, Error> {
        if number < 1 {
            return Err(Error::InvalidId {
                kind: "model version",
                value: number.to_string(),
                rule: "is counted from 1",
            });
        }
        Ok(Self(number))
    }

    pub const fn get(self) -> i32 {
        self.0
    }
}

macro_rules! uuid_id {
    ($name:ident, $kind:literal) => {
        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                Uuid::parse_str(s).map(Self).map_err(|_| Error::InvalidId {
                    kind: $kind,
                    value: s.to_owned(),
                    rule: "is not a uuid",
                })
            }
        }
    };
}

uuid_id!(CustomerId, "customer id");
uuid_id!(RunId, "run id");

impl TryFrom<i32> for VersionNumber {
    type Error = Error;

    fn try_from(number: i32) -> Result<Self, Error> {
        Self::new(number)
    }
}

/// Compares with a bare number, so a check reads `version == 3`.
impl PartialEq<i32> for VersionNumber {
    fn eq(&self, other: &i32) -> bool {
        self.0 == *other
    }
}

impl From<VersionNumber> for i64 {
    fn from(version: VersionNumber) -> Self {
        i64::from(version.0)
    }
}

impl From<VersionNumber> for i32 {
    fn from(version: VersionNumber) -> Self {
        version.0
    }
}

impl fmt::Display for VersionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for VersionNumber {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let number = s.parse::<i32>().map_err(|_| Error::InvalidId {
            kind: "model version",
            value: s.to_owned(),
            rule: "is not a whole number",
        })?;
        Self::new(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_and_write_the_text_and_json_of_the_value_they_wrap() {
        let uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
        let customer = CustomerId::from(uuid);
        assert_eq!(customer.to_string(), uuid.to_string());
        assert_eq!(
            customer.to_string().parse::<CustomerId>().ok(),
            Some(customer)
        );
        assert_eq!(
            serde_json::to_value(customer).ok(),
            serde_json::to_value(uuid).ok()
        );
        let run: RunId = serde_json::from_value(serde_json::json!(uuid.to_string()))
            .expect("a uuid string is a run id");
        assert_eq!(Uuid::from(run), uuid);

        let version: VersionNumber = "7".parse().expect("7 is a version");
        assert_eq!(version.get(), 7);
        assert_eq!(version.to_string(), "7");
        assert_eq!(
            serde_json::to_value(version).ok(),
            Some(serde_json::json!(7))
        );
    }

    #[test]
    fn a_bad_id_is_refused_with_its_value_named() {
        let err = "nope".parse::<RunId>().expect_err("not a uuid");
        assert!(err.to_string().contains("\"nope\""), "{err}");
        assert!("0".parse::<VersionNumber>().is_err());
        assert!(serde_json::from_value::<VersionNumber>(serde_json::json!(-1)).is_err());
        assert!("v3".parse::<VersionNumber>().is_err());
    }
}
