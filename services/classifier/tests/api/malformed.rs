//! Bad input never gets a 500: each malformed payload gets its own 4xx with a JSON body saying what is
//! wrong (and, for invalid fields, which field and rule).

use serde_json::{Value, json};

use crate::{customer_json, seed, spawn_with_champion};

enum Body {
    Json(Value),
    Raw(&'static str, Option<&'static str>),
    Bytes(Vec<u8>),
}

struct Case {
    name: &'static str,
    path: &'static str,
    body: Body,
    status: u16,
    /// A field the 422 details must name, or a phrase the error must contain.
    expect: &'static str,
}

fn with(key: &str, value: Value) -> Value {
    let mut v = customer_json(&seed()[0]);
    v[key] = value;
    v
}

fn without(key: &str) -> Value {
    let mut v = customer_json(&seed()[0]);
    v.as_object_mut().unwrap().remove(key);
    v
}

fn cases() -> Vec<Case> {
    let json_case = |name, body: Value, status, expect| Case {
        name,
        path: "/predict",
        body: Body::Json(body),
        status,
        expect,
    };
    let mut no_internet = with("internet_service", json!("No"));
    no_internet["online_security"] = json!("Yes");
    let mut no_phone = with("phone_service", json!("No"));
    no_phone["multiple_lines"] = json!("Yes");
    let mut twice = customer_json(&seed()[0]);
    twice["Tenure Months"] = json!(3);
    vec![
        Case {
            name: "syntax error",
            path: "/predict",
            body: Body::Raw("{\"gender\": ", Some("application/json")),
            status: 400,
            expect: "not valid JSON",
        },
        Case {
            name: "trailing garbage",
            path: "/predict",
            body: Body::Raw("{} x", Some("application/json")),
            status: 400,
            expect: "not valid JSON",
        },
        Case {
            name: "empty body",
            path: "/predict",
            body: Body::Raw("", Some("application/json")),
            status: 400,
            expect: "not valid JSON",
        },
        Case {
            name: "text/plain",
            path: "/predict",
            body: Body::Raw("{}", Some("text/plain")),
            status: 415,
            expect: "Content-Type",
        },
        Case {
            name: "no content type",
            path: "/predict",
            body: Body::Raw("{}", None),
            status: 415,
            expect: "Content-Type",
        },
        Case {
            name: "body too large",
            path: "/predict",
            body: Body::Bytes(vec![b' '; 3 * 1024 * 1024]),
            status: 413,
            expect: "larger",
        },
        Case {
            name: "invalid UTF-8",
            path: "/predict",
            body: Body::Bytes(b"{\"city\": \"\xff\"}".to_vec()),
            status: 400,
            expect: "not valid JSON",
        },
        json_case("an array", json!([1, 2]), 422, "$"),
        json_case("a string", json!("customer"), 422, "$"),
        json_case("null", Value::Null, 422, "$"),
        json_case("a number", json!(7), 422, "$"),
        json_case("an empty object", json!({}), 422, "tenure_months"),
        json_case(
            "an unknown field",
            with("tenure_month", json!(3)),
            422,
            "tenure_month",
        ),
        json_case("a missing field", without("contract"), 422, "contract"),
        json_case(
            "tenure 1000",
            with("tenure_months", json!(1000)),
            422,
            "tenure_months",
        ),
        json_case(
            "negative tenure",
            with("tenure_months", json!(-1)),
            422,
            "tenure_months",
        ),
        json_case(
            "tenure as text",
            with("tenure_months", json!("abc")),
            422,
            "tenure_months",
        ),
        json_case(
            "fractional tenure",
            with("tenure_months", json!(1.5)),
            422,
            "tenure_months",
        ),
        json_case(
            "null tenure",
            with("tenure_months", Value::Null),
            422,
            "tenure_months",
        ),
        json_case(
            "negative monthly charge",
            with("monthly_charges", json!(-5)),
            422,
            "monthly_charges",
        ),
        json_case(
            "monthly charge as text",
            with("monthly_charges", json!("lots")),
            422,
            "monthly_charges",
        ),
        json_case(
            "negative total charge",
            with("total_charges", json!(-0.01)),
            422,
            "total_charges",
        ),
        json_case(
            "unknown gender",
            with("gender", json!("Robot")),
            422,
            "gender",
        ),
        json_case(
            "add-on without internet",
            no_internet,
            422,
            "online_security",
        ),
        json_case("lines without phone", no_phone, 422, "multiple_lines"),
        json_case(
            "latitude 200",
            with("latitude", json!(200)),
            422,
            "latitude",
        ),
        json_case(
            "longitude -500",
            with("longitude", json!(-500)),
            422,
            "longitude",
        ),
        json_case(
            "letters in the zip code",
            with("zip_code", json!("ABCDE")),
            422,
            "zip_code",
        ),
        json_case("blank city", with("city", json!("  ")), 422, "city"),
        json_case(
            "control character in city",
            with("city", json!("Los\u{7}Angeles")),
            422,
            "city",
        ),
        json_case(
            "object as city",
            with("city", json!({"name": "LA"})),
            422,
            "city",
        ),
        json_case(
            "unknown contract",
            with("contract", json!("Ten year")),
            422,
            "contract",
        ),
        json_case(
            "unknown payment method",
            with("payment_method", json!("Bitcoin")),
            422,
            "payment_method",
        ),
        json_case(
            "senior citizen 2",
            with("senior_citizen", json!(2)),
            422,
            "senior_citizen",
        ),
        json_case("a field given twice", twice, 422, "tenure_months"),
        json_case(
            "unknown churn label",
            with("churn_label", json!("Maybe")),
            422,
            "churn_label",
        ),
        Case {
            name: "batch of one object",
            path: "/predict/batch",
            body: Body::Json(json!({"gender": "Male"})),
            status: 422,
            expect: "array",
        },
        Case {
            name: "empty batch",
            path: "/predict/batch",
            body: Body::Json(json!([])),
            status: 422,
            expect: "empty",
        },
        Case {
            name: "unknown query parameter",
            path: "/predict?verbose=1",
            body: Body::Json(customer_json(&seed()[0])),
            status: 400,
            expect: "verbose",
        },
        Case {
            name: "explain not a boolean",
            path: "/predict?explain=maybe",
            body: Body::Json(customer_json(&seed()[0])),
            status: 400,
            expect: "explain",
        },
    ]
}

#[tokio::test]
async fn every_malformed_payload_gets_its_own_4xx_with_a_json_body() {
    let app = spawn_with_champion(&[]).await;
    let cases = cases();
    assert!(cases.len() >= 30);
    for case in cases {
        let request = app.client.post(app.url(case.path));
        let request = match case.body {
            Body::Json(v) => request.json(&v),
            Body::Raw(text, content_type) => {
                let r = request.body(text);
                match content_type {
                    Some(ct) => r.header("content-type", ct),
                    None => r,
                }
            }
            Body::Bytes(bytes) => request
                .header("content-type", "application/json")
                .body(bytes),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{}: the body is not JSON ({e})", case.name));
        assert_eq!(status, case.status, "{}: {body}", case.name);
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no error in {body}", case.name));
        if status == 422 && body["details"]["errors"].is_array() {
            let fields: Vec<&str> = body["details"]["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["field"].as_str().unwrap())
                .collect();
            assert!(fields.contains(&case.expect), "{}: {fields:?}", case.name);
            assert!(
                body["details"]["errors"][0]["rule"].is_string(),
                "{}",
                case.name
            );
        } else {
            assert!(
                error.contains(case.expect) || body["details"].to_string().contains(case.expect),
                "{}: {body}",
                case.name
            );
        }
    }
    // A wrong method is a JSON 405, not an empty one.
    let response = app.get("/predict").await;
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("GET"), "{body}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_request_that_stalls_past_the_timeout_gets_a_json_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with_champion(&[("REQUEST_TIMEOUT_SECS", "1")]).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    // Headers promise a body, and only its first byte ever comes.
    stream
        .write_all(b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut response),
    )
    .await;
    assert!(
        read.is_ok(),
        "the server answered within the timeout plus slack"
    );
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("REQUEST_TIMEOUT_SECS"), "{text}");
    app.shutdown().await;
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let app = spawn_with_champion(&[("MAX_BODY_BYTES", "2048")]).await;
    let items: Vec<Value> = seed().iter().take(10).map(customer_json).collect();
    let response = app
        .client
        .post(app.url("/predict/batch"))
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("larger"), "{body}");
    app.shutdown().await;
}
