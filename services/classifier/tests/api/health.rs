//! Operational routes, readiness without a champion or without the object store, and the OpenAPI spec.

use serde_json::Value;

use crate::{spawn_app, spawn_with_champion};

#[tokio::test]
async fn health_ready_metrics_and_openapi_answer() {
    let app = spawn_with_champion(&[]).await;
    churn_service::testing::check_operational_routes(&app, "ready").await;
    app.shutdown().await;
}

#[tokio::test]
async fn without_a_champion_ready_and_predict_answer_503_saying_so() {
    let app = spawn_app(&[]).await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    // Down, without the reason: the reason is in the log, the body names no internals.
    assert_eq!(body["checks"]["model"]["status"], "down", "{body}");
    let (status, body) =
        crate::post(&app, "/predict", &crate::customer_json(&crate::seed()[0])).await;
    assert_eq!(status, 503);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no champion model"),
        "{body}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_openapi_spec_documents_exactly_the_served_routes() {
    let app = spawn_with_champion(&[]).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut documented: Vec<String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    documented.sort();
    let served = [
        "GET /health",
        "GET /metrics",
        "GET /model",
        "GET /ready",
        "POST /admin/reload",
        "POST /feedback",
        "POST /predict",
        "POST /predict/batch",
    ];
    assert_eq!(documented, served);
    // Every documented route answers (never 404/405), and an undocumented one does not.
    for route in served {
        let (method, path) = route.split_once(' ').unwrap();
        let request = if method == "GET" {
            app.client.get(app.url(path))
        } else {
            app.client.post(app.url(path))
        };
        let status = request.send().await.unwrap().status().as_u16();
        assert!(status != 404 && status != 405, "{route}: {status}");
    }
    assert_eq!(app.get("/predict/stream").await.status(), 404);
    // Every schema the spec refers to is defined in it.
    let text = spec.to_string();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            schemas.contains_key(name),
            "{name} is referenced but not defined"
        );
    }
    app.shutdown().await;
}
