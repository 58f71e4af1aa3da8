//! Test support for the services (feature `testing`): a service started in-process on port 0 against a
//! fresh database and S3 server, and the checks every service must pass.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures: a failure should stop the test loudly

use churn_config::Env;
use churn_testkit::{TestDb, TestS3};

/// A service started in-process on 127.0.0.1:0 against its own database and S3 server.
#[derive(Debug)]
pub struct TestService {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub s3: TestS3,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The environment a service under test reads: its database, the S3 server, port 0, plus `extra`.
pub fn service_env(db: &TestDb, s3: &TestS3, port_var: &str, extra: &[(&str, &str)]) -> Env {
    let mut pairs: Vec<(String, String)> = s3
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    pairs.push(("DATABASE_URL".to_owned(), db.url.clone()));
    pairs.push((port_var.to_owned(), "0".to_owned()));
    pairs.push(("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()));
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Env::from_pairs(pairs)
}

impl TestService {
    /// Starts a service: `build` receives the environment and returns the bound application.
    pub async fn spawn<F, Fut>(port_var: &str, extra: &[(&str, &str)], build: F) -> TestService
    where
        F: FnOnce(Env) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<crate::Application>>,
    {
        let db = TestDb::new().await;
        let s3 = TestS3::start().await;
        let env = service_env(&db, &s3, port_var, extra);
        let app = build(env).await.expect("the service starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        TestService {
            address,
            client: reqwest::Client::new(),
            db,
            s3,
            stop: Some(tx),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// Asks the server to stop gracefully and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }
}

/// Checks every service must pass: `/health`, `/ready` (answering `expected_readiness`, with the database
/// and object store ok), `/metrics`, `/openapi.json` and the JSON 404.
pub async fn check_operational_routes(app: &TestService, expected_readiness: &str) {
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.json().await.expect("health is JSON");
    assert_eq!(body["status"], "ok");

    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("ready is JSON");
    assert_eq!(body["status"], expected_readiness, "{body}");
    assert_eq!(body["checks"]["database"]["ok"], true, "{body}");
    assert_eq!(body["checks"]["object_store"]["ok"], true, "{body}");

    let missing = app.get("/no/such/route").await;
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.expect("404 is JSON");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("/no/such/route"),
        "{body}"
    );
    assert!(body.get("details").is_some(), "{body}");

    let spec: serde_json::Value = app
        .get("/openapi.json")
        .await
        .json()
        .await
        .expect("spec is JSON");
    assert!(
        spec["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3."),
        "{spec}"
    );
    for path in ["/health", "/ready", "/metrics"] {
        assert!(spec["paths"].get(path).is_some(), "{path} is documented");
    }

    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("metrics text");
    assert!(
        text.contains("http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"}"),
        "{text}"
    );
}

/// Stops the service's S3 server and checks `/ready` reports it, answering `expected_status`
/// (503 where the object store is critical, 200 "degraded" where the service keeps working).
pub async fn check_object_store_outage(app: &mut TestService, expected_status: u16) {
    app.s3.stop().await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), expected_status);
    let body: serde_json::Value = ready.json().await.expect("ready is JSON");
    let expected = if expected_status == 503 {
        "not_ready"
    } else {
        "degraded"
    };
    assert_eq!(body["status"], expected, "{body}");
    assert_eq!(body["checks"]["object_store"]["ok"], false, "{body}");
    assert_eq!(body["checks"]["database"]["ok"], true, "{body}");
}

/// The admin token the service tests start their services with.
pub const TEST_ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Runs schemathesis (the pinned one in the test venv beside `CHURN_PYTHON`, which `scripts/test` sets)
/// with every check against the service's `/openapi.json`, and fails with its report when it finds
/// anything. The seed is fixed so that a run is reproducible.
pub async fn schemathesis(app: &TestService, extra: &[&str]) {
    schemathesis_with_config(app, extra, None).await;
}

/// [`schemathesis`] with a `schemathesis.toml` (e.g. `[parameters]` naming existing resources, so that
/// requests reach past the 404s).
pub async fn schemathesis_with_config(app: &TestService, extra: &[&str], config: Option<&str>) {
    let python = std::env::var_os("CHURN_PYTHON").unwrap_or_else(|| {
        panic!(
            "CHURN_PYTHON is not set: run scripts/test, or set CHURN_PYTHON=$(scripts/venv)/bin/python"
        )
    });
    let schemathesis = std::path::Path::new(&python).with_file_name("schemathesis");
    let report = tempfile::tempdir().expect("a report folder");
    if let Some(config) = config {
        // Found by schemathesis in its working directory.
        std::fs::write(report.path().join("schemathesis.toml"), config).expect("the config");
    }
    let mut command = std::process::Command::new(&schemathesis);
    command
        .current_dir(report.path())
        .args(["run", &app.url("/openapi.json"), "--checks", "all"])
        .args(["--seed", "1", "--max-examples", "60", "--no-color"])
        .args(["-H", &format!("Authorization: Bearer {TEST_ADMIN_TOKEN}")])
        .args(extra);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("schemathesis task")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", schemathesis.display()));
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Swagger UI answers at `/docs/` with its page and its (compiled-in) assets.
pub async fn check_swagger_ui(app: &TestService) {
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("the page");
    assert!(html.contains("swagger"), "{html}");
    let config = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(config.status(), 200);
    let js = config.text().await.expect("the initializer");
    // Relative to /docs/, so a proxy's path prefix is kept.
    assert!(js.contains("\"../openapi.json\""), "{js}");
}

/// Sends the head of a POST announcing a large body to `address` (`http://127.0.0.1:PORT`), and none of
/// the body; returns the status line of the answer and how long it took. A route that checks its caller
/// before reading the body answers at once; one that reads first waits for the body that never comes.
pub async fn post_head_only(
    address: &str,
    path: &str,
    extra_header: &str,
) -> (String, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: 1900000\r\n{extra_header}\r\n"
    );
    let started = std::time::Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer before the body was sent")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    (
        text.lines().next().unwrap_or_default().to_owned(),
        started.elapsed(),
    )
}

/// An already-built service running in this process (for tests that start several services on one
/// database and object store).
#[derive(Debug)]
pub struct RunningApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningApp {
    /// Runs `app` until [`RunningApp::stop`].
    pub fn start(app: crate::Application) -> RunningApp {
        let port = app.port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        RunningApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            stop: Some(tx),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Stops the service gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }
}

/// The seed split [`champion_model`] is trained on (half the rows) and the other half.
fn champion_split() -> (Vec<churn_core::Customer>, Vec<churn_core::Customer>) {
    let params = churn_automl::split::SplitParams {
        test_fraction: 0.5,
        seed: 3,
    }
    .check()
    .expect("valid split");
    let seed = churn_core::read_customers(&churn_testkit::seed_data_path()).expect("seed data");
    churn_automl::split::split_customers(seed, &params).expect("labelled seed")
}

/// The drift reference registered with [`champion_model`]: its training half of the seed, with its
/// probabilities on the other half.
pub fn champion_profile() -> Vec<u8> {
    let (train, holdout) = champion_split();
    let model = churn_automl::LoadedModel::new(champion_model()).expect("a valid model");
    churn_models::classifier::training_profile(&model, &train, &holdout).expect("a profile")
}

/// A small champion model, trained once per build tree and cached (training is deterministic, so test
/// processes racing to write it write the same bytes).
pub fn champion_model() -> churn_automl::ChurnModel {
    let cache = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from)
        .join("churn-test-champion-v1.json");
    if let Ok(bytes) = std::fs::read(&cache)
        && let Ok(model) = churn_automl::ChurnModel::from_bytes(&bytes)
    {
        return model;
    }
    let (train, _) = champion_split();
    let options = churn_automl::TrainOptions {
        time_budget: std::time::Duration::from_secs(2),
        ..churn_automl::TrainOptions::default()
    };
    let model = churn_automl::train(&train, None, options, |_| {}).expect("training");
    if let Some(dir) = cache.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = cache.with_extension(format!("{}.tmp", std::process::id()));
    if std::fs::write(&tmp, model.to_bytes().expect("artifact")).is_ok() {
        let _ = std::fs::rename(&tmp, &cache);
    }
    model
}

/// Registers [`champion_model`] as a new version of the classifier and points `champion` at it.
pub async fn register_champion(db: &TestDb, s3: &TestS3) -> churn_registry::ModelVersion {
    let registry = churn_registry::Registry::new(db.pool.clone(), s3.open());
    let info = churn_models::classifier::TrainingInfo {
        data_path: "seed.csv".into(),
        data_sha256: "c".repeat(64),
        train_rows: 3500,
        holdout_rows: 0,
        split_seed: 3,
        code_version: "test".into(),
        profile: Some(champion_profile()),
    };
    let version = churn_models::classifier::register(&registry, &champion_model(), None, &info)
        .await
        .expect("register the champion");
    registry
        .set_alias(
            churn_models::classifier::MODEL_NAME,
            &churn_registry::Alias::CHAMPION,
            version.version,
        )
        .await
        .expect("set the champion");
    version
}
