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
    churn_testkit::check_object_store_outage(&mut app, 503).await;
    app.shutdown().await;
}
