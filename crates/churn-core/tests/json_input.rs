//! JSON records: the three naming conventions, round trips, and malformed payloads with specific errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use churn_core::{Customer, PaymentMethod, YesNo};
use serde_json::{Value, json};

fn snake() -> Value {
    json!({
        "country": "United States", "state": "California", "city": "Los Angeles", "zip_code": "90003",
        "latitude": 33.964131, "longitude": -118.272783, "gender": "Male", "senior_citizen": "No",
        "partner": "No", "dependents": "No", "tenure_months": 2, "phone_service": "Yes",
        "multiple_lines": "No", "internet_service": "DSL", "online_security": "Yes",
        "online_backup": "Yes", "device_protection": "No", "tech_support": "No", "streaming_tv": "No",
        "streaming_movies": "No", "contract": "Month-to-month", "paperless_billing": "Yes",
        "payment_method": "Mailed check", "monthly_charges": 53.85, "total_charges": 108.15
    })
}

/// A request body of the original FastAPI service (shared with the classifier's tests).
fn original_api_payload() -> Value {
    serde_json::from_str(include_str!("fixtures/original_api_payload.json")).unwrap()
}

fn errors_of(value: &Value) -> Vec<(String, String)> {
    Customer::from_json(value)
        .expect_err("should be invalid")
        .iter()
        .map(|e| (e.field.clone(), e.rule.clone()))
        .collect()
}

fn with(key: &str, value: Value) -> Value {
    let mut v = snake();
    v[key] = value;
    v
}

#[test]
fn snake_case_dataset_and_original_api_names_give_the_same_customer() {
    let a = Customer::from_json(&snake()).unwrap();
    let b = Customer::from_json(&original_api_payload()).unwrap();
    let mut headers = serde_json::Map::new();
    for (k, v) in snake().as_object().unwrap() {
        let field = churn_core::Field::ALL
            .iter()
            .find(|f| f.name() == k)
            .unwrap();
        headers.insert(field.header().to_owned(), v.clone());
    }
    let c = Customer::from_json(&Value::Object(headers)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[test]
fn serialization_is_snake_case_and_round_trips() {
    let customer = Customer::from_json(&with("churn_label", json!("Yes"))).unwrap();
    let value = serde_json::to_value(&customer).unwrap();
    assert_eq!(value["tenure_months"], json!(2));
    assert_eq!(value["payment_method"], json!("Mailed check"));
    assert_eq!(value["churn_label"], json!("Yes"));
    let back: Customer = serde_json::from_value(value).unwrap();
    assert_eq!(back, customer);
}

#[test]
fn snake_case_values_booleans_and_digits_are_accepted() {
    let mut v = with("payment_method", json!("credit_card_automatic"));
    v["senior_citizen"] = json!(true);
    v["partner"] = json!(1);
    v["contract"] = json!("month_to_month");
    let c = Customer::from_json(&v).unwrap();
    assert_eq!(c.payment_method, PaymentMethod::CreditCard);
    assert_eq!(c.senior_citizen, YesNo::Yes);
    assert_eq!(c.partner, YesNo::Yes);
}

#[test]
fn a_payload_that_is_not_an_object_is_refused() {
    assert_eq!(
        errors_of(&json!([1, 2])),
        vec![(
            "$".to_owned(),
            "must be a JSON object of customer fields".to_owned()
        )]
    );
}

#[test]
fn an_unknown_field_is_named() {
    let errors = errors_of(&with("tenure_month", json!(3)));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "tenure_month");
    assert!(errors[0].1.contains("not a customer field"));
}

#[test]
fn a_field_given_under_two_spellings_is_refused() {
    let errors = errors_of(&with("Tenure Months", json!(3)));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "tenure_months");
    assert!(errors[0].1.contains("given twice"));
}

#[test]
fn wrong_json_types_are_reported_per_field() {
    let mut v = with("tenure_months", json!("abc"));
    v["city"] = json!(false);
    v["monthly_charges"] = json!([1]);
    let errors = errors_of(&v);
    assert_eq!(
        errors,
        vec![
            ("city".to_owned(), "must be a string".to_owned()),
            (
                "tenure_months".to_owned(),
                "must be a whole number of months".to_owned()
            ),
            ("monthly_charges".to_owned(), "must be a number".to_owned()),
        ]
    );
}

#[test]
fn a_null_or_missing_required_field_is_required() {
    let mut v = with("gender", Value::Null);
    v.as_object_mut().unwrap().remove("contract");
    let errors = errors_of(&v);
    assert_eq!(
        errors,
        vec![
            ("gender".to_owned(), "is required".to_owned()),
            ("contract".to_owned(), "is required".to_owned()),
        ]
    );
}

#[test]
fn a_negative_tenure_is_out_of_range() {
    let errors = errors_of(&with("tenure_months", json!(-1)));
    assert!(errors[0].1.contains("between 0 and 120"));
}

#[test]
fn a_yes_no_field_refuses_other_numbers() {
    let errors = errors_of(&with("dependents", json!(2)));
    assert_eq!(errors[0].0, "dependents");
}

#[test]
fn errors_carry_the_value_received() {
    let err = Customer::from_json(&with("tenure_months", json!(1000))).unwrap_err();
    let e = err.for_field("tenure_months").unwrap();
    assert_eq!(e.value, json!(1000));
    let body = serde_json::to_value(&err).unwrap();
    assert_eq!(body[0]["field"], json!("tenure_months"));
}

#[test]
fn charges_above_the_domain_ceiling_are_refused_naming_the_bound() {
    for (field, value) in [
        ("monthly_charges", 10_000.01),
        ("total_charges", 1_200_000.5),
    ] {
        let errors = errors_of(&with(field, json!(value)));
        let (_, rule) = errors.iter().find(|(f, _)| f == field).expect(field);
        assert!(rule.starts_with("must be between 0 and"), "{rule}");
    }
    assert!(Customer::from_json(&with("monthly_charges", json!(10_000.0))).is_ok());
}

#[test]
fn an_answer_to_many_unknown_keys_lists_a_few_and_counts_the_rest() {
    let mut body = snake();
    for i in 0..5000 {
        body[format!("unknown_{i}")] = json!("x".repeat(1000));
    }
    for errors in [
        Customer::from_json(&body).unwrap_err(),
        match Customer::from_json_slice(body.to_string().as_bytes()) {
            Err(churn_core::JsonInputError::Invalid(e)) => e,
            other => panic!("{other:?}"),
        },
    ] {
        assert_eq!(
            errors.len(),
            churn_core::json_input::MAX_ECHOED_UNKNOWN_KEYS + 1
        );
        let summary = errors.for_field("$").unwrap();
        assert_eq!(summary.value, json!(5000 - 16));
        // Echoed values are cut short: the answer is small whatever the body.
        assert!(serde_json::to_string(&errors).unwrap().len() < 4096);
    }
}
