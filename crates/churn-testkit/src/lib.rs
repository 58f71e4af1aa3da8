//! Test fixtures over real servers: a fresh, migrated PostgreSQL database per test and an S3 server
//! (s3s-fs, the S3 API over HTTP on 127.0.0.1) per test.
//!
//! The database server comes from `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! `scripts/test` points it at a throwaway server when the machine has none.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures: a failure should stop the test loudly

use std::net::SocketAddr;
use std::path::PathBuf;

use churn_store::objects::S3Options;
use churn_store::{ObjectStoreHandle, ObjectStoreUrl};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// The server-level URL tests create their databases on.
pub fn admin_database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The versions of every migration compiled in, in order.
pub fn migration_versions() -> Vec<i32> {
    churn_store::embedded_migrations()
        .iter()
        .map(|m| m.0)
        .collect()
}

/// The versions refinery recorded as applied in a database, in order.
pub async fn applied_migrations(pool: &PgPool) -> Vec<i32> {
    sqlx::query_scalar("select version from public.refinery_schema_history order by version")
        .fetch_all(pool)
        .await
        .expect("read refinery_schema_history")
}

/// The seed dataset: `CHURN_SEED_DATA`, else `shared/data/telco_customer_churn.csv` beside the repository.
pub fn seed_data_path() -> PathBuf {
    std::env::var_os("CHURN_SEED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/telco_customer_churn.csv")
        })
}

/// A database of its own for one test, migrated, dropped when the value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    admin_url: String,
}

impl TestDb {
    /// Creates and migrates a fresh database.
    pub async fn new() -> TestDb {
        let db = Self::empty().await;
        churn_store::migrate(&db.url)
            .await
            .expect("migrations apply to a fresh database");
        db
    }

    /// Creates a fresh database without applying migrations.
    pub async fn empty() -> TestDb {
        let admin_url = admin_database_url();
        let name = format!("churn_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {admin_url} (set DATABASE_URL or run scripts/test): {e}"
            )
        });
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("DATABASE_URL is a URL");
        url.set_path(&name);
        let url = url.to_string();
        let pool = churn_store::connect(&url, 5)
            .await
            .expect("connect to the test database");
        TestDb {
            name,
            url,
            pool,
            admin_url,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, where blocking on async work is not allowed: use a thread
        // with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "drop database if exists {name} with (force)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Credentials the test S3 server checks (requests are really signed and verified).
pub const S3_ACCESS_KEY: &str = "churn-test-access";
pub const S3_SECRET_KEY: &str = "churn-test-secret-key-0123456789";

/// An S3-compatible HTTP server (s3s-fs) on 127.0.0.1 with one bucket, backed by a temporary directory.
#[derive(Debug)]
pub struct TestS3 {
    pub addr: SocketAddr,
    pub bucket: String,
    root: tempfile::TempDir,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestS3 {
    /// Starts a server on a free port with the bucket `churn-test`.
    pub async fn start() -> TestS3 {
        let root = tempfile::tempdir().expect("temporary directory");
        let bucket = "churn-test".to_owned();
        std::fs::create_dir_all(root.path().join(&bucket)).expect("create the bucket directory");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let mut s3 = TestS3 {
            addr,
            bucket,
            root,
            server: None,
        };
        s3.serve(listener);
        s3
    }

    fn serve(&mut self, listener: TcpListener) {
        let fs = s3s_fs::FileSystem::new(self.root.path()).expect("s3s-fs root");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(S3_ACCESS_KEY, S3_SECRET_KEY));
        let service = builder.build();
        self.server = Some(tokio::spawn(async move {
            // Connections live in this set, so aborting the server task also cuts open connections.
            let mut connections = JoinSet::new();
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                connections.spawn(async move {
                    let _ = conn.await;
                });
            }
        }));
    }

    /// Stops the server and drops every open connection; the stored objects stay on disk.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// Starts the server again on the same port with the same objects.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind the S3 port");
        self.serve(listener);
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self) -> ObjectStoreUrl {
        ObjectStoreUrl::S3 {
            bucket: self.bucket.clone(),
            prefix: String::new(),
        }
    }

    pub fn options(&self) -> S3Options {
        S3Options {
            endpoint: Some(self.endpoint()),
            access_key_id: Some(S3_ACCESS_KEY.to_owned()),
            secret_access_key: Some(S3_SECRET_KEY.to_owned()),
            region: Some("us-east-1".to_owned()),
            allow_http: true,
        }
    }

    /// A client for the bucket.
    pub fn open(&self) -> ObjectStoreHandle {
        ObjectStoreHandle::open(&self.url(), &self.options()).expect("open the test S3 store")
    }

    /// The environment a child process needs to reach this server as `OBJECT_STORE_URL`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OBJECT_STORE_URL", self.url().to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }

    /// Directory holding the bucket's files, for tests that tamper with stored objects.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(&self.bucket)
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

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
pub fn service_env(
    db: &TestDb,
    s3: &TestS3,
    port_var: &str,
    extra: &[(&str, &str)],
) -> churn_service::Env {
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
    churn_service::Env::from_pairs(pairs)
}

impl TestService {
    /// Starts a service: `build` receives the environment and returns the bound application.
    pub async fn spawn<F, Fut>(port_var: &str, extra: &[(&str, &str)], build: F) -> TestService
    where
        F: FnOnce(churn_service::Env) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<churn_service::Application>>,
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

/// Checks every service must pass: `/health`, `/ready`, `/metrics`, `/openapi.json` and the JSON 404.
pub async fn check_operational_routes(app: &TestService) {
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.json().await.expect("health is JSON");
    assert_eq!(body["status"], "ok");

    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("ready is JSON");
    assert_eq!(body["status"], "ready", "{body}");
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

/// Serves the seed file's bytes over HTTP at `http://127.0.0.1:PORT/telco.csv` for download tests;
/// the server lives as long as the calling runtime.
pub async fn serve_seed_file() -> String {
    let bytes = std::fs::read(seed_data_path()).expect("seed data readable");
    let app = axum::Router::new().route(
        "/telco.csv",
        axum::routing::get(move || async move { bytes.clone() }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/telco.csv")
}
