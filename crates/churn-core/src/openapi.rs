//! The customer's OpenAPI schema (feature `openapi`), written out so it states exactly what validation
//! accepts: required fields, categories, ranges, lengths, the zip-code pattern, and the two business
//! rules (no phone service ⇔ "No phone service"; no internet ⇔ every add-on "No internet service").

use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};

use crate::category::{Category, Contract, Gender, PaymentMethod};
use crate::validation::{MAX_MONTHLY_CHARGES, MAX_TENURE_MONTHS, MAX_TEXT_LEN, MAX_TOTAL_CHARGES};
use crate::{ADD_ON_FIELDS, Customer, Field};

/// Free text: after trimming, 1 to 100 characters, no control characters.
const TEXT_PATTERN: &str =
    r"^\s*[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?\s*$";

fn text(description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_TEXT_LEN))
        .pattern(Some(TEXT_PATTERN))
        .description(Some(description))
        .into()
}

fn number(min: f64, max: f64, description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(min))
        .maximum(Some(max))
        .description(Some(description))
        .into()
}

/// A category's accepted spellings: the dataset's label and its snake_case form.
fn spellings(label: &str) -> Vec<Value> {
    let snake = crate::category::normalize_name(label);
    if snake == label {
        vec![json!(label)]
    } else {
        vec![json!(label), json!(snake)]
    }
}

fn labels<T: Category>() -> Vec<Value> {
    T::ALL.iter().flat_map(|v| spellings(v.label())).collect()
}

fn one_of_labels(values: Vec<Value>, description: &str) -> Schema {
    let values: Vec<Value> = values
        .iter()
        .filter_map(Value::as_str)
        .flat_map(spellings)
        .collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
        .into()
}

/// A yes/no field taking `values` (both, or only yes or only no): "Yes"/"No" (or "yes"/"no"),
/// true/false, or 1/0.
fn yes_no_of(values: &[bool], description: &str) -> Schema {
    let texts: Vec<&str> = values
        .iter()
        .flat_map(|v| {
            if *v {
                ["Yes", "yes", "true", "1"]
            } else {
                ["No", "no", "false", "0"]
            }
        })
        .collect();
    let numbers: Vec<u8> = values.iter().map(|v| u8::from(*v)).collect();
    OneOfBuilder::new()
        .description(Some(description))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(texts)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some(values.to_vec())),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .enum_values(Some(numbers)),
        )
        .into()
}

fn category<T: Category>(description: &str) -> Schema {
    one_of_labels(labels::<T>(), description)
}

/// One complete variant of the customer object: the business rules fix which `multiple_lines` and add-on
/// values go with a phone service and an internet service, so each of the four combinations is spelt
/// out (no phone/with phone × no internet/with internet).
fn variant(phone: bool, internet: bool) -> Schema {
    let yes_no = || {
        yes_no_of(
            &[true, false],
            "\"Yes\" or \"No\" (true/false and 1/0 are accepted too)",
        )
    };
    let lines: Vec<Value> = if phone {
        vec![json!("No"), json!("Yes")]
    } else {
        vec![json!("No phone service")]
    };
    let (internet_values, add_ons): (Vec<Value>, Vec<Value>) = if internet {
        (
            vec![json!("DSL"), json!("Fiber optic")],
            vec![json!("No"), json!("Yes")],
        )
    } else {
        (vec![json!("No")], vec![json!("No internet service")])
    };
    let title = match (phone, internet) {
        (true, true) => "Customer with phone and internet service",
        (true, false) => "Customer with phone service, no internet",
        (false, true) => "Customer with internet service, no phone",
        (false, false) => "Customer with neither phone nor internet service",
    };
    let mut fields = ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some(title))
        .property("country", text("Country, e.g. \"United States\""))
        .property("state", text("State, e.g. \"California\""))
        .property("city", text("City, e.g. \"Los Angeles\""))
        .property(
            "zip_code",
            OneOfBuilder::new()
                .description(Some(
                    "A 5-digit US zip code, as text so leading zeros survive (a number, as the \
                     original API sent it, is accepted too)",
                ))
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(r"^\s*[0-9]{5}\s*$")),
                )
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0))
                        .maximum(Some(99_999)),
                ),
        )
        .property("latitude", number(-90.0, 90.0, "Degrees"))
        .property("longitude", number(-180.0, 180.0, "Degrees"))
        .property("gender", category::<Gender>("Gender"))
        .property("senior_citizen", yes_no())
        .property("partner", yes_no())
        .property("dependents", yes_no())
        .property(
            "tenure_months",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(MAX_TENURE_MONTHS))
                .description(Some("Whole months as a customer")),
        )
        .property(
            "phone_service",
            yes_no_of(&[phone], "Whether the customer has phone service"),
        )
        .property(
            "multiple_lines",
            one_of_labels(
                lines,
                "\"No phone service\" exactly when phone_service is \"No\"",
            ),
        )
        .property(
            "internet_service",
            one_of_labels(internet_values, "Internet service"),
        );
    for field in ADD_ON_FIELDS {
        fields = fields.property(
            field.name(),
            one_of_labels(
                add_ons.clone(),
                "An internet add-on; \"No internet service\" exactly when internet_service is \"No\"",
            ),
        );
    }
    fields = fields
        .property("contract", category::<Contract>("Contract"))
        .property("paperless_billing", yes_no())
        .property("payment_method", category::<PaymentMethod>("Payment method"))
        .property(
            "monthly_charges",
            number(0.0, MAX_MONTHLY_CHARGES, "Monthly charges"),
        )
        .property(
            "total_charges",
            number(0.0, MAX_TOTAL_CHARGES, "Total charges so far"),
        )
        .property(
            "churn_label",
            OneOfBuilder::new()
                .description(Some(
                    "Whether the customer churned, when known (null or absent: unknown); ignored by \
                     predictions",
                ))
                .item(yes_no_of(&[true, false], "Known"))
                .item(ObjectBuilder::new().schema_type(Type::Null)),
        )
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for field in Field::ALL.iter().filter(|f| **f != Field::ChurnLabel) {
        fields = fields.required(field.name());
    }
    fields.into()
}

/// The customer schema: one of the four variants the business rules allow.
pub(crate) fn customer_schema() -> RefOr<Schema> {
    let example = serde_json::to_value(Customer::example()).unwrap_or_default();
    RefOr::T(
        OneOfBuilder::new()
            .description(Some(
                "One Telco customer. Keys may also be written as the dataset's headers (\"Tenure \
                 Months\") or the original API's names (\"Tenure_Months\"); identifier and leakage keys \
                 (CustomerID, Lat_Long, Churn Score, …) are accepted and ignored, any other key is \
                 refused. Category values are the dataset's labels. The business rules decide the \
                 variant: no phone service ⇔ multiple_lines \"No phone service\"; no internet service \
                 ⇔ every add-on \"No internet service\".",
            ))
            .item(variant(true, true))
            .item(variant(true, false))
            .item(variant(false, true))
            .item(variant(false, false))
            .examples([example])
            .into(),
    )
}

impl utoipa::PartialSchema for Customer {
    fn schema() -> RefOr<Schema> {
        customer_schema()
    }
}

impl utoipa::ToSchema for Customer {}
