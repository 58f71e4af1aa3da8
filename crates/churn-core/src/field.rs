//! The customer record's fields: canonical snake_case names, the dataset's headers, and key aliases.

use crate::category::normalize_name;

macro_rules! fields {
    ($($variant:ident => $name:literal, $header:literal;)+) => {
        /// One attribute of a customer record.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field { $($variant),+ }

        impl Field {
            /// Every field in the dataset's column order.
            pub const ALL: &'static [Field] = &[$(Field::$variant),+];

            /// The snake_case name used in JSON, SQL and error messages.
            pub const fn name(self) -> &'static str {
                match self { $(Field::$variant => $name),+ }
            }

            /// The IBM dataset's column header.
            pub const fn header(self) -> &'static str {
                match self { $(Field::$variant => $header),+ }
            }

            /// The field whose snake_case name or dataset header is exactly `key`.
            fn exact(key: &str) -> Option<Field> {
                match key {
                    $($name | $header => Some(Field::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

fields! {
    Country => "country", "Country";
    State => "state", "State";
    City => "city", "City";
    ZipCode => "zip_code", "Zip Code";
    Latitude => "latitude", "Latitude";
    Longitude => "longitude", "Longitude";
    Gender => "gender", "Gender";
    SeniorCitizen => "senior_citizen", "Senior Citizen";
    Partner => "partner", "Partner";
    Dependents => "dependents", "Dependents";
    TenureMonths => "tenure_months", "Tenure Months";
    PhoneService => "phone_service", "Phone Service";
    MultipleLines => "multiple_lines", "Multiple Lines";
    InternetService => "internet_service", "Internet Service";
    OnlineSecurity => "online_security", "Online Security";
    OnlineBackup => "online_backup", "Online Backup";
    DeviceProtection => "device_protection", "Device Protection";
    TechSupport => "tech_support", "Tech Support";
    StreamingTv => "streaming_tv", "Streaming TV";
    StreamingMovies => "streaming_movies", "Streaming Movies";
    Contract => "contract", "Contract";
    PaperlessBilling => "paperless_billing", "Paperless Billing";
    PaymentMethod => "payment_method", "Payment Method";
    MonthlyCharges => "monthly_charges", "Monthly Charges";
    TotalCharges => "total_charges", "Total Charges";
    ChurnLabel => "churn_label", "Churn Label";
}

/// Columns of the dataset (and keys of the original API's payload) that are known but not part of the
/// record: identifiers, duplicates and the leakage columns. Readers accept and skip them.
pub const IGNORED_KEYS: &[&str] = &[
    "customerid",
    "customer_id",
    "count",
    "lat_long",
    "churn_value",
    "churn_score",
    "cltv",
    "churn_reason",
    "model_version",
    "date",
];

/// Columns that must never be model features: they identify the customer or are derived from the outcome.
pub const LEAKAGE_COLUMNS: &[&str] = &[
    "CustomerID",
    "Count",
    "Churn Value",
    "Churn Score",
    "CLTV",
    "Churn Reason",
];

/// What a (normalized) key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Field(Field),
    Ignored,
    Unknown,
}

impl Field {
    /// Resolves any of the accepted spellings: "tenure_months", "Tenure Months", "Tenure_Months".
    pub fn lookup(raw_key: &str) -> Key {
        // Exact snake_case names and dataset headers need no normalizing (the common case, and the
        // hot path of every prediction request).
        if let Some(f) = Field::exact(raw_key) {
            return Key::Field(f);
        }
        let key = normalize_name(raw_key);
        if let Some(f) = Field::ALL.iter().copied().find(|f| f.name() == key) {
            Key::Field(f)
        } else if IGNORED_KEYS.contains(&key.as_str()) {
            Key::Ignored
        } else {
            Key::Unknown
        }
    }

    /// Position in [`Field::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether a record may omit the field.
    pub fn is_optional(self) -> bool {
        // Blank total charges are accepted on tenure-0 rows (see the crate docs); the label is absent
        // on records sent for prediction.
        matches!(self, Field::ChurnLabel | Field::TotalCharges)
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_normalizes_to_its_field_name() {
        for f in Field::ALL {
            assert_eq!(normalize_name(f.header()), f.name());
            assert_eq!(Field::lookup(f.header()), Key::Field(*f));
        }
    }

    #[test]
    fn the_original_api_names_resolve() {
        assert_eq!(Field::lookup("Zip_Code"), Key::Field(Field::ZipCode));
        assert_eq!(
            Field::lookup("Streaming_TV"),
            Key::Field(Field::StreamingTv)
        );
        assert_eq!(Field::lookup("CustomerID"), Key::Ignored);
        assert_eq!(Field::lookup("Lat_Long"), Key::Ignored);
        assert_eq!(Field::lookup("tenure_month"), Key::Unknown);
    }
}
