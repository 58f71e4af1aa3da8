//! POST /feedback: outcomes by request id or customer id, validated together and kept all or none,
//! under the caller's key name.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{customer_json, seed, spawn_with_champion};

const CRM_KEY: &str = "crm-key-0123456789abcdef";

type OutcomeRow = (
    Option<uuid::Uuid>,
    Option<i32>,
    Option<String>,
    bool,
    String,
);

/// (request id as a ULID or none, item, customer id, churned, caller) of every kept outcome.
async fn outcomes(
    pool: &PgPool,
) -> Vec<(Option<String>, Option<i32>, Option<String>, bool, String)> {
    let rows: Vec<OutcomeRow> = sqlx::query_as(
        "select request_id, item, customer_id, churned, caller from serving.outcomes order by outcome_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, item, customer, churned, caller)| {
            (
                id.map(|id| ulid::Ulid::from(id).to_string()),
                item,
                customer,
                churned,
                caller,
            )
        })
        .collect()
}

async fn feedback(
    app: &churn_service::testing::TestService,
    key: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut request = app.client.post(app.url("/feedback")).json(body);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn outcomes_by_request_id_and_by_customer_id_are_kept_under_the_callers_key_name() {
    let keys = format!("crm:{CRM_KEY}");
    let app = spawn_with_champion(&[
        ("PREDICT_API_KEY", "default-key-0123456789"),
        ("PREDICT_API_KEYS", &keys),
    ])
    .await;
    let mut customer = customer_json(&seed()[0]);
    customer["Customer ID"] = json!("7590-VHVEG");
    let predicted = app
        .client
        .post(app.url("/predict"))
        .header("x-api-key", CRM_KEY)
        .json(&customer)
        .send()
        .await
        .unwrap();
    assert_eq!(predicted.status(), 200);
    let predicted: Value = predicted.json().await.unwrap();
    let id = predicted["request_id"].as_str().unwrap();
    let (status, body) = feedback(
        &app,
        Some(CRM_KEY),
        &json!({ "outcomes": [
            { "request_id": id, "churned": true },
            { "request_id": id, "item": 0, "churned": false, "observed_at": "2026-01-01T00:00:00Z" },
            { "customer_id": "7590-VHVEG", "churned": true },
        ]}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 3);
    let kept = outcomes(&app.db.pool).await;
    assert_eq!(
        kept,
        vec![
            (Some(id.to_owned()), None, None, true, "crm".to_owned()),
            (Some(id.to_owned()), Some(0), None, false, "crm".to_owned()),
            (
                None,
                None,
                Some("7590-VHVEG".to_owned()),
                true,
                "crm".to_owned()
            ),
        ]
    );
    // A single outcome and a bare array work too; the key is needed.
    let (status, _) = feedback(
        &app,
        Some(CRM_KEY),
        &json!({ "customer_id": "a", "churned": false }),
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = feedback(
        &app,
        Some(CRM_KEY),
        &json!([{ "customer_id": "b", "churned": false }]),
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = feedback(&app, None, &json!({ "customer_id": "c", "churned": false })).await;
    assert_eq!(status, 401);
    assert_eq!(outcomes(&app.db.pool).await.len(), 5);
}

#[tokio::test]
async fn one_invalid_outcome_refuses_the_request_whole_and_every_error_is_reported() {
    let app = spawn_with_champion(&[("FEEDBACK_MAX_BATCH", "5")]).await;
    let future = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
    let (status, body) = feedback(
        &app,
        None,
        &json!([
            { "customer_id": "ok", "churned": true },
            { "request_id": "not-a-ulid", "churned": true },
            { "customer_id": "x", "churned": "yes" },
            { "customer_id": "y", "churned": true, "observed_at": future },
            { "churned": true },
        ]),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let errors: Vec<(String, String)> = body["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "outcomes[1].request_id",
            "outcomes[2].churned",
            "outcomes[3].observed_at",
            "outcomes[4].request_id"
        ]
    );
    assert!(errors.iter().all(|(_, rule)| !rule.is_empty()));
    assert_eq!(body["details"]["errors"][1]["value"], "yes");
    assert!(outcomes(&app.db.pool).await.is_empty(), "nothing is kept");

    let six: Vec<Value> = (0..6)
        .map(|i| json!({ "customer_id": format!("c{i}"), "churned": true }))
        .collect();
    let (status, body) = feedback(&app, None, &Value::Array(six)).await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("at most 5"),
        "{body}"
    );
    let (status, _) = feedback(&app, None, &json!([])).await;
    assert_eq!(status, 422);
    assert!(outcomes(&app.db.pool).await.is_empty());
}
