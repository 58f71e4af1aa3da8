//! GET /synthesize: one record, arrays, NDJSON streams, determinism, caps and bad parameters.

use churn_core::Customer;
use serde_json::Value;

use crate::spawn_app;

async fn json(app: &churn_service::testing::TestService, path: &str) -> (u16, Value) {
    let response = app.get(path).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_first_start_fits_registers_and_serves_a_valid_customer() {
    let app = spawn_app(&[]).await;
    let response = app.get("/synthesize").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-model-version"], "1");
    let body: Value = response.json().await.unwrap();
    assert!(body.is_object());
    Customer::from_json(&body).expect("a valid customer");
    let (name, version): (String, i32) =
        sqlx::query_as("select model_name, version from registry.aliases where alias = 'champion'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((name.as_str(), version), ("synthesizer", 1));
    app.shutdown().await;
}

#[tokio::test]
async fn an_array_of_n_valid_customers_is_deterministic_for_a_seed() {
    let app = spawn_app(&[]).await;
    let (status, a) = json(&app, "/synthesize?n=500&seed=7").await;
    assert_eq!(status, 200);
    let rows = a.as_array().unwrap();
    assert_eq!(rows.len(), 500);
    for row in rows {
        Customer::from_json(row).expect("a valid customer");
    }
    let (_, b) = json(&app, "/synthesize?n=500&seed=7").await;
    assert_eq!(a, b);
    let (_, c) = json(&app, "/synthesize?n=500&seed=8").await;
    assert_ne!(a, c);
    app.shutdown().await;
}

#[tokio::test]
async fn a_large_sample_streams_as_ndjson_and_as_a_json_array() {
    let app = spawn_app(&[]).await;
    let response = app
        .client
        .get(app.url("/synthesize?n=20000&seed=1"))
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20_000);
    let first: Value = serde_json::from_str(lines[0]).unwrap();
    Customer::from_json(&first).unwrap();

    let (_, array) = json(&app, "/synthesize?n=20000&seed=1").await;
    let array = array.as_array().unwrap();
    assert_eq!(array.len(), 20_000);
    // The same seed gives the same rows whichever format carries them.
    assert_eq!(array[0], first);
    assert_eq!(
        array[19_999],
        serde_json::from_str::<Value>(lines[19_999]).unwrap()
    );
    app.shutdown().await;
}

#[tokio::test]
async fn n_above_the_cap_is_refused_naming_the_cap() {
    let app = spawn_app(&[("SYNTHESIZE_MAX_ROWS", "1000")]).await;
    let (status, body) = json(&app, "/synthesize?n=1001").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("at most 1000"),
        "{body}"
    );
    assert_eq!(body["details"]["parameter"], "n");
    app.shutdown().await;
}

#[tokio::test]
async fn bad_parameters_are_refused_with_the_rule() {
    let app = spawn_app(&[]).await;
    for (query, parameter) in [
        ("n=0", "n"),
        ("n=-5", "n"),
        ("n=ten", "n"),
        ("seed=-1", "seed"),
        ("format=xml", "format"),
        ("count=3", "count"),
    ] {
        let (status, body) = json(&app, &format!("/synthesize?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["details"]["parameter"], parameter, "{query}: {body}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_second_replica_loads_the_registered_version_instead_of_fitting_again() {
    let app = spawn_app(&[]).await;
    // A second service on the same database and bucket.
    let env = churn_service::testing::service_env(
        &app.db,
        &app.s3,
        synthesizer::PORT_VAR,
        &[("CHURN_SEED_DATA", "/nonexistent/seed.csv")],
    );
    let second = synthesizer::build(synthesizer::config_from_env(&env).unwrap())
        .await
        .expect("starts without the seed file: the model comes from the registry");
    drop(second);
    let versions: i64 = sqlx::query_scalar("select count(*) from registry.model_versions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(versions, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_count_synthesized_rows() {
    let app = spawn_app(&[]).await;
    let _ = app.get("/synthesize?n=10").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.contains("synthesized_rows_total"), "{text}");
    app.shutdown().await;
}
