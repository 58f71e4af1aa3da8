//! Operational routes: health, readiness, metrics, OpenAPI, 404s.

use crate::spawn_app;

#[tokio::test]
async fn health_ready_metrics_and_openapi_answer() {
    let app = spawn_app(&[]).await;
    churn_service::testing::check_operational_routes(&app, "ready").await;
    app.shutdown().await;
}

#[tokio::test]
async fn an_object_store_outage_degrades_but_keeps_serving() {
    let mut app = spawn_app(&[]).await;
    churn_service::testing::check_object_store_outage(&mut app, 200).await;
    assert_eq!(app.get("/synthesize").await.status(), 200);
    app.shutdown().await;
}
