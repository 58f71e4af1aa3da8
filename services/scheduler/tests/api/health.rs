//! Operational routes: health, readiness, metrics, OpenAPI, 404s.

use crate::spawn_app;

#[tokio::test]
async fn health_ready_metrics_and_openapi_answer() {
    // Alone (no synthesizer or classifier to reach), the scheduler is up but degraded.
    let app = spawn_app(&[("BOOTSTRAP_TRAIN_BUDGET_SECS", "0")]).await;
    churn_service::testing::check_operational_routes(&app, "degraded").await;
    app.shutdown().await;
}

#[tokio::test]
async fn ready_reports_an_unreachable_object_store() {
    let mut app = spawn_app(&[]).await;
    churn_service::testing::check_object_store_outage(&mut app, 503).await;
    app.shutdown().await;
}

#[tokio::test]
async fn the_openapi_document_matches_what_the_service_does() {
    let app = spawn_app(&[
        ("ADMIN_TOKEN", churn_service::testing::TEST_ADMIN_TOKEN),
        ("S3_EVENT_SECRET", churn_service::testing::TEST_ADMIN_TOKEN),
    ])
    .await;
    churn_service::testing::check_swagger_ui(&app).await;
    churn_service::testing::schemathesis(&app, &[]).await;
}
