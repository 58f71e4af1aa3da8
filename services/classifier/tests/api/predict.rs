//! POST /predict and /predict/batch: answers, explanations, the original payload, batches, security.

use serde_json::{Value, json};

use crate::{ADMIN_TOKEN, customer_json, loaded, post, seed, spawn_with_champion};

#[tokio::test]
async fn a_prediction_has_a_label_probability_confidence_and_the_model_version() {
    let app = spawn_with_champion(&[]).await;
    let customers = seed();
    let model = loaded();
    for c in customers.iter().step_by(700) {
        let (status, body) = post(&app, "/predict", &customer_json(c)).await;
        assert_eq!(status, 200, "{body}");
        let p = body["churn_probability"].as_f64().unwrap();
        // The service answers exactly what the registered model computes.
        assert!((p - model.predict(std::slice::from_ref(c))[0]).abs() < 1e-12);
        let churn = p >= body["threshold"].as_f64().unwrap();
        assert_eq!(
            body["predicted_churn_label"],
            if churn { "Yes" } else { "No" }
        );
        let confidence = body["confidence"].as_f64().unwrap();
        assert!((confidence - if churn { p } else { 1.0 - p }).abs() < 1e-12);
        assert_eq!(body["model_name"], "churn-classifier");
        assert_eq!(body["model_version"], 1);
        assert!(body["predicted_at"].as_str().unwrap().contains('T'));
        assert!(body.get("explanation").is_none());
    }
    app.shutdown().await;
}

#[tokio::test]
async fn explain_adds_the_top_feature_contributions() {
    let app = spawn_with_champion(&[]).await;
    let (status, body) = post(&app, "/predict?explain=true", &customer_json(&seed()[0])).await;
    assert_eq!(status, 200, "{body}");
    let explanation = body["explanation"].as_array().unwrap();
    assert_eq!(explanation.len(), 5);
    assert!(
        explanation
            .iter()
            .all(|c| c["field"].is_string() && c["contribution"].is_number())
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_original_apis_payload_is_accepted() {
    let app = spawn_with_champion(&[]).await;
    // The original FastAPI service's request body, as churn-core's JSON tests use it.
    let payload: Value = serde_json::from_str(include_str!(
        "../../../../crates/churn-core/tests/fixtures/original_api_payload.json"
    ))
    .unwrap();
    let (status, body) = post(&app, "/predict", &payload).await;
    assert_eq!(status, 200, "{body}");
    let (_, snake) = post(&app, "/predict", &customer_json(&seed()[0])).await;
    assert_eq!(body["churn_probability"], snake["churn_probability"]);
    app.shutdown().await;
}

#[tokio::test]
async fn a_batch_with_a_bad_item_fails_only_that_item() {
    let app = spawn_with_champion(&[]).await;
    let customers = seed();
    let mut items: Vec<Value> = customers.iter().take(20).map(customer_json).collect();
    items[7]["tenure_months"] = json!(1000);
    items[7]["gender"] = json!("Robot");
    let (status, body) = post(&app, "/predict/batch", &Value::Array(items.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["valid"], 19);
    assert_eq!(body["invalid"], 1);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
    }
    assert_eq!(results[7]["status"], "invalid");
    let fields: Vec<&str> = results[7]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["gender", "tenure_months"]);
    // Valid items get the same answer as one by one.
    let (_, single) = post(&app, "/predict", &items[3]).await;
    assert_eq!(results[3]["churn_probability"], single["churn_probability"]);
    // The wrapped form works too.
    let (status, body) = post(&app, "/predict/batch", &json!({ "customers": items })).await;
    assert_eq!(status, 200);
    assert_eq!(body["valid"], 19);
    app.shutdown().await;
}

#[tokio::test]
async fn a_full_batch_split_over_the_cores_keeps_every_item_in_its_place() {
    let app = spawn_with_champion(&[]).await;
    let customers: Vec<_> = seed().into_iter().take(1000).collect();
    let mut items: Vec<Value> = customers.iter().map(customer_json).collect();
    // Bad items at both ends and in the middle, so every share of the work holds some.
    let bad = [0, 499, 500, 501, 999];
    for &i in &bad {
        items[i]["contract"] = json!("Forever");
    }
    let (status, body) = post(&app, "/predict/batch", &Value::Array(items)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["valid"], 995);
    assert_eq!(body["invalid"], 5);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1000);
    let expected = loaded().predict(&customers);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
        if bad.contains(&i) {
            assert_eq!(r["status"], "invalid", "{r}");
            assert_eq!(r["errors"][0]["field"], "contract", "{r}");
        } else {
            assert_eq!(r["status"], "ok", "{r}");
            let p = r["churn_probability"].as_f64().unwrap();
            assert!(
                (p - expected[i]).abs() < 1e-12,
                "item {i}: {p} vs {}",
                expected[i]
            );
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_batch_over_the_cap_is_refused_naming_the_cap() {
    let app = spawn_with_champion(&[("PREDICT_MAX_BATCH", "10")]).await;
    let items: Vec<Value> = seed().iter().take(11).map(customer_json).collect();
    let (status, body) = post(&app, "/predict/batch", &Value::Array(items)).await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("at most 10"),
        "{body}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn an_api_key_when_configured_is_required_on_predict_routes() {
    let key = "predict-key-0123456789abcdef";
    let app = spawn_with_champion(&[("PREDICT_API_KEY", key)]).await;
    let body = customer_json(&seed()[0]);
    let (status, err) = post(&app, "/predict", &body).await;
    assert_eq!(status, 401);
    assert!(
        err["error"].as_str().unwrap().contains("X-API-Key"),
        "{err}"
    );
    let status_with = |path: &'static str, header: (&'static str, String), body: Value| {
        let request = app.client.post(app.url(path)).header(header.0, header.1);
        async move { request.json(&body).send().await.unwrap().status() }
    };
    let wrong = status_with("/predict", ("x-api-key", "nope".to_owned()), body.clone());
    assert_eq!(wrong.await, 401);
    let right = status_with("/predict", ("x-api-key", key.to_owned()), body.clone());
    assert_eq!(right.await, 200);
    let bearer = ("authorization", format!("Bearer {key}"));
    let batch = status_with("/predict/batch", bearer, json!([body]));
    assert_eq!(batch.await, 200);
    // Operational routes stay open for probes and scrapers.
    assert_eq!(app.get("/health").await.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn admin_reload_needs_the_admin_token() {
    let app = spawn_with_champion(&[]).await;
    let url = app.url("/admin/reload");
    assert_eq!(app.client.post(&url).send().await.unwrap().status(), 401);
    let wrong = app
        .client
        .post(&url)
        .bearer_auth("wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let right = app
        .client
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let body: Value = right.json().await.unwrap();
    assert_eq!(body["outcome"], "unchanged");
    app.shutdown().await;

    let without = crate::spawn_app(&[("ADMIN_TOKEN", "")]).await;
    let status = without
        .client
        .post(without.url("/admin/reload"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
    without.shutdown().await;
}

#[tokio::test]
async fn metrics_count_predictions_by_label_and_expose_the_model_version() {
    let app = spawn_with_champion(&[]).await;
    for c in seed().iter().take(30) {
        post(&app, "/predict", &customer_json(c)).await;
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    for needle in [
        "predictions_total{label=",
        "churn_probability_bucket",
        "model_version_info{model=\"churn-classifier\",version=\"1\",role=\"champion\"} 1",
        "model_reloads_total",
        "http_request_duration_seconds_bucket{method=\"POST\",route=\"/predict\",status=\"200\"",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    app.shutdown().await;
}
