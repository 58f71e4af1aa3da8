//! Test fixtures over real servers: a fresh, migrated PostgreSQL database per test and an S3 server
//! (s3s-fs, the S3 API over HTTP on 127.0.0.1) per test.
//!
//! The database server comes from `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! `scripts/test` points it at a throwaway server when the machine has none.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures: a failure should stop the test loudly

use std::net::SocketAddr;
use std::path::PathBuf;

use churn_config::{DatabaseConfig, Env, S3Options, Secret};
use churn_store::sql::quote_ident;
use churn_store::{ObjectStoreHandle, ObjectStoreUrl};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use sqlx::{Connection, PgConnection, PgPool, Postgres, QueryBuilder};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// The server-level URL tests create their databases on: DATABASE_URL's server (the default one when
/// unset), database `postgres`.
pub fn admin_database_url() -> String {
    let config = DatabaseConfig::from_env(&Env::Process)
        .unwrap_or_else(|e| panic!("the test database settings are invalid: {e}"));
    config.url.with_database("postgres").expose().to_owned()
}

/// A port on 127.0.0.1 that was free a moment ago, for a child process to listen on. Another process may
/// take it before the child binds; tests that start servers in-process should bind port 0 instead.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding an ephemeral port on 127.0.0.1")
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
    // Not a checked query: refinery creates its history table on the first run, so the database the
    // queries are checked against need not hold it.
    sqlx::query_scalar("select version from public.refinery_schema_history order by version")
        .fetch_all(pool)
        .await
        .expect("read refinery_schema_history")
}

/// The seed dataset, found as every process finds it ([`churn_config::seed_data_path`]).
pub fn seed_data_path() -> PathBuf {
    churn_config::seed_data_path(&Env::Process)
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

    /// The test database's URL as `role`, without a password (the test server trusts local connections),
    /// to exercise what a service's own role may do.
    pub fn url_as(&self, role: &str) -> String {
        let mut url = url::Url::parse(&self.url).expect("the test database URL is a URL");
        url.set_username(role)
            .expect("a URL with a host takes a user name");
        url.set_password(None)
            .expect("a URL with a host takes a password");
        url.to_string()
    }

    /// A pool of connections to the test database as `role` (see [`TestDb::url_as`]).
    pub async fn pool_as(&self, role: &str) -> PgPool {
        churn_store::connect(&self.url_as(role), 3)
            .await
            .unwrap_or_else(|e| panic!("connect to the test database as {role}: {e}"))
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
        QueryBuilder::<Postgres>::new("create database ")
            .push(quote_ident(&name))
            .build()
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
                    let _ = QueryBuilder::<Postgres>::new("drop database if exists ")
                        .push(quote_ident(&name))
                        .push(" with (force)")
                        .build()
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
            secret_access_key: Some(Secret::new(S3_SECRET_KEY)),
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

/// Serves the seed file's bytes over HTTP at `http://127.0.0.1:PORT/telco.csv` for download tests (a
/// minimal HTTP/1.1 responder: `GET /telco.csv` gets the file, any other path a 404); the server lives as
/// long as the calling runtime.
pub async fn serve_seed_file() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bytes = std::sync::Arc::new(std::fs::read(seed_data_path()).expect("seed data readable"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let bytes = bytes.clone();
            tokio::spawn(async move {
                // Read the request head; the body of a GET is empty.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let found = head.starts_with(b"GET /telco.csv ");
                let (status, body): (&str, &[u8]) = if found {
                    ("200 OK", &bytes)
                } else {
                    ("404 Not Found", b"not found")
                };
                let header = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/csv\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(header.as_bytes()).await;
                let _ = socket.write_all(body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/telco.csv")
}
