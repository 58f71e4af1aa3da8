//! The service's edges: authentication before the body, readiness without leaks, the LISTEN connection
//! outside the pool, the exact OpenAPI document (schemathesis), Swagger UI, and SIGTERM with a stuck
//! client.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use churn_service::testing::{check_swagger_ui, post_head_only};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::{ADMIN_TOKEN, register_champion, spawn_app, spawn_with_champion, wait_for_version};

const KEY: &str = "predict-key-0123456789abcdef";

#[tokio::test]
async fn an_unauthenticated_large_body_is_refused_before_it_is_read() {
    let app = spawn_app(&[("PREDICT_API_KEY", KEY)]).await;
    for path in ["/predict", "/predict/batch"] {
        let (status, took) = post_head_only(&app.address, path, "").await;
        assert!(status.contains("401"), "{path}: {status}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    let (status, _) = post_head_only(
        &app.address,
        "/admin/reload",
        "authorization: Bearer wrong\r\n",
    )
    .await;
    assert!(status.contains("403"), "{status}");
}

#[tokio::test]
async fn model_info_needs_the_key_when_one_is_configured_and_the_scheme_is_case_insensitive() {
    let app = spawn_with_champion(&[("PREDICT_API_KEY", KEY)]).await;
    assert_eq!(app.get("/model").await.status(), 401);
    let with_key = app
        .client
        .get(app.url("/model"))
        .header("x-api-key", format!("  {KEY} "))
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), 200);
    let bearer = app
        .client
        .post(app.url("/admin/reload"))
        .header("authorization", format!("bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
}

#[tokio::test]
async fn readiness_says_ok_degraded_or_down_without_error_text_and_is_cached() {
    let mut app = spawn_with_champion(&[]).await;
    app.s3.stop().await;
    // The cached answer (from the start-up wait) may be up to a second old.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = app.get("/ready").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["checks"]["object_store"]["status"], "down", "{body}");
    assert_eq!(body["checks"]["database"]["status"], "ok", "{body}");
    for leak in [
        "error",
        "connect",
        "127.0.0.1",
        "models/",
        "sha256",
        "refused",
        "http",
    ] {
        assert!(!text.to_lowercase().contains(leak), "{leak} in {text}");
    }
    // No checksum either (the shadow_model check's name is not one).
    let hex_run = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(hex_run < 16, "a checksum-like string in {text}");
    // Within a second the same answer is served without probing again, even once the store is back.
    app.s3.restart().await;
    let again: Value = app.get("/ready").await.json().await.unwrap();
    assert_eq!(again["checks"]["object_store"]["status"], "down", "{again}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh: Value = app.get("/ready").await.json().await.unwrap();
    assert_eq!(fresh["checks"]["object_store"]["status"], "ok", "{fresh}");
}

#[tokio::test]
async fn a_pool_of_one_connection_still_serves_while_the_alias_is_watched() {
    // LISTEN holds a connection of its own: with a pool of one, requests and refreshes still get theirs.
    let app = spawn_with_champion(&[("DATABASE_MAX_CONNECTIONS", "1")]).await;
    let model = crate::model();
    let v2 = register_champion(&app, &model).await;
    wait_for_version(&app, v2.version.get(), Duration::from_secs(3)).await;
    let ready: Value = app.get("/ready").await.json().await.unwrap();
    assert_eq!(ready["checks"]["database"]["status"], "ok", "{ready}");
}

#[tokio::test]
async fn the_openapi_document_matches_what_the_service_does() {
    let app = spawn_with_champion(&[]).await;
    check_swagger_ui(&app).await;
    // An `observed_at` more than 5 minutes ahead is refused, a rule no schema can state: schema-valid
    // feedback may be refused there, every other check still applies.
    let config = r#"
[[operations]]
include-path = "/feedback"
checks.positive_data_acceptance.expected-statuses = ["2XX", "401", "422"]
"#;
    churn_service::testing::schemathesis_with_config(&app, &[], Some(config)).await;
}

#[tokio::test]
async fn sigterm_with_a_stuck_client_exits_within_the_shutdown_grace() {
    let db = churn_testkit::TestDb::new().await;
    let objects = tempfile::tempdir().unwrap();
    let port = churn_testkit::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_classifier"))
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env(
            "OBJECT_STORE_URL",
            format!("file://{}", objects.path().display()),
        )
        .env("CLASSIFIER_PORT", port.to_string())
        .env("SHUTDOWN_GRACE_SECS", "2")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stuck = loop {
        if let Ok(stream) = TcpStream::connect(&address).await {
            break stream;
        }
        assert!(Instant::now() < deadline, "the classifier did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A body announced and never sent: the request waits for it.
    stuck
        .write_all(b"POST /predict HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running {:?} after SIGTERM",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}
