//! Operational routes: health, readiness, metrics, OpenAPI, 404s.

use crate::spawn_app;

#[tokio::test]
async fn health_ready_metrics_and_openapi_answer() {
    let app = spawn_app(&[]).await;
    churn_testkit::check_operational_routes(&app).await;
    app.shutdown().await;
}

#[tokio::test]
async fn ready_reports_an_unreachable_object_store() {
    let mut app = spawn_app(&[]).await;
    app.s3.stop().await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["object_store"]["ok"], false);
    assert_eq!(body["checks"]["database"]["ok"], true);
    app.shutdown().await;
}
