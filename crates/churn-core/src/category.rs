//! Typed categories of the Telco data, each with the dataset's own label and a forgiving parser.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Lower-cases and joins alphanumeric runs with `_`, so "Fiber optic", "fiber_optic" and "FIBER-OPTIC"
/// name the same category, and "Tenure Months", "Tenure_Months" and "tenure_months" the same field.
pub fn normalize_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_sep = false;
    for ch in raw.trim().chars() {
        if ch.is_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.extend(ch.to_lowercase());
        } else {
            pending_sep = true;
        }
    }
    out
}

/// A closed set of values with the labels the IBM dataset uses.
pub trait Category: Copy + Eq + Sized + 'static {
    /// Every value, in the order of their codes.
    const ALL: &'static [Self];
    /// The dataset's spelling, e.g. "Fiber optic".
    fn label(self) -> &'static str;
    /// A dense code 0..ALL.len(), stable across versions (new values are appended).
    fn code(self) -> usize;

    /// Accepts the dataset label exactly or any spelling with the same [`normalize_name`].
    fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        if let Some(v) = Self::ALL.iter().copied().find(|v| v.label() == trimmed) {
            return Some(v);
        }
        let key = normalize_name(trimmed);
        Self::ALL
            .iter()
            .copied()
            .find(|v| normalize_name(v.label()) == key)
    }

    /// "one of \"A\", \"B\"" for error messages.
    fn allowed() -> String {
        let labels: Vec<String> = Self::ALL
            .iter()
            .map(|v| format!("\"{}\"", v.label()))
            .collect();
        format!("must be one of {}", labels.join(", "))
    }

    fn from_code(code: usize) -> Option<Self> {
        Self::ALL.get(code).copied()
    }
}

macro_rules! category {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl Category for $name {
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
            fn code(self) -> usize {
                self as usize
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.label())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.label())
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(<$name as Category>::ALL.iter().map(|v| v.label())))
                    .description(Some("The dataset's label; snake_case spellings are accepted on input."))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                <$name as Category>::parse(&raw).ok_or_else(|| {
                    serde::de::Error::custom(format!("{raw:?} {}", <$name as Category>::allowed()))
                })
            }
        }
    };
}

category!(
    /// Customer gender as recorded.
    Gender { Female => "Female", Male => "Male" }
);

category!(
    /// A plain yes/no attribute; JSON also accepts true/false and 1/0 for it.
    YesNo { No => "No", Yes => "Yes" }
);

impl YesNo {
    pub fn is_yes(self) -> bool {
        self == YesNo::Yes
    }

    pub fn from_bool(b: bool) -> Self {
        if b { YesNo::Yes } else { YesNo::No }
    }
}

category!(
    /// Multiple phone lines; "No phone service" exactly when the customer has no phone service.
    MultipleLines { No => "No", Yes => "Yes", NoPhoneService => "No phone service" }
);

category!(
    /// Kind of internet service.
    InternetService { Dsl => "DSL", FiberOptic => "Fiber optic", No => "No" }
);

category!(
    /// An internet add-on; "No internet service" exactly when the customer has no internet service.
    AddOn { No => "No", Yes => "Yes", NoInternetService => "No internet service" }
);

category!(
    /// Contract term.
    Contract { MonthToMonth => "Month-to-month", OneYear => "One year", TwoYear => "Two year" }
);

category!(
    /// How the customer pays.
    PaymentMethod {
        BankTransfer => "Bank transfer (automatic)",
        CreditCard => "Credit card (automatic)",
        ElectronicCheck => "Electronic check",
        MailedCheck => "Mailed check",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_across_the_three_conventions() {
        assert_eq!(normalize_name("Tenure Months"), "tenure_months");
        assert_eq!(normalize_name("Tenure_Months"), "tenure_months");
        assert_eq!(normalize_name("tenure_months"), "tenure_months");
        assert_eq!(normalize_name("\u{feff}CustomerID"), "customerid");
        assert_eq!(
            normalize_name("Credit card (automatic)"),
            "credit_card_automatic"
        );
    }

    #[test]
    fn categories_parse_labels_and_snake_case_spellings() {
        assert_eq!(
            InternetService::parse("Fiber optic"),
            Some(InternetService::FiberOptic)
        );
        assert_eq!(
            InternetService::parse("fiber_optic"),
            Some(InternetService::FiberOptic)
        );
        assert_eq!(
            Contract::parse("month-to-month"),
            Some(Contract::MonthToMonth)
        );
        assert_eq!(
            PaymentMethod::parse("credit_card_automatic"),
            Some(PaymentMethod::CreditCard)
        );
        assert_eq!(AddOn::parse("Maybe"), None);
    }

    #[test]
    fn codes_round_trip() {
        for v in PaymentMethod::ALL {
            assert_eq!(PaymentMethod::from_code(v.code()), Some(*v));
        }
    }
}
