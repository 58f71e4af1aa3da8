//! Start-up and serving: waiting for the database, migrations, the shared middleware stack and graceful
//! shutdown on SIGTERM or Ctrl-C.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::config::CommonConfig;
use crate::error::ApiError;
use crate::metrics::track_http;
use churn_store::ObjectStoreHandle;

/// Runs a service's start-up and serving on a multi-threaded runtime with the configured number of
/// worker threads ([`CommonConfig::worker_threads`]).
pub fn run<F: Future<Output = anyhow::Result<()>>>(
    worker_threads: usize,
    service: F,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(service)
}

/// The database pool and the object store, shared by a service's handlers and jobs.
#[derive(Debug, Clone)]
pub struct Infra {
    pub pool: PgPool,
    pub objects: ObjectStoreHandle,
}

impl Infra {
    /// Waits for the database (up to DATABASE_WAIT_SECS), applies migrations, opens the pool and the
    /// object store. Several services may do this at once: migrations serialize on an advisory lock.
    pub async fn start(config: &CommonConfig) -> anyhow::Result<Infra> {
        let deadline = Instant::now() + Duration::from_secs(config.database_wait_secs);
        let mut delay = Duration::from_millis(200);
        loop {
            match churn_store::migrate(&config.database_url).await {
                Ok(applied) => {
                    if !applied.is_empty() {
                        tracing::info!(?applied, "applied database migrations");
                    }
                    break;
                }
                Err(churn_store::Error::Connect(e)) if Instant::now() < deadline => {
                    tracing::warn!(error = %e, "database not reachable yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(3));
                }
                Err(e) => {
                    return Err(e).context("DATABASE_URL: the database could not be migrated");
                }
            }
        }
        let pool = churn_store::connect(&config.database_url, config.database_max_connections)
            .await
            .context("DATABASE_URL")?;
        let objects = ObjectStoreHandle::open(&config.object_store_url, &config.s3)
            .context("OBJECT_STORE_URL")?;
        Ok(Infra { pool, objects })
    }
}

/// Limits every service applies to requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body.
    pub body_bytes: usize,
    /// Longest a request may take, body included, before it is answered with 408.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 2 * 1024 * 1024,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Turns a service's documented routes into the served router: adds `/health`, `/metrics`,
/// `/openapi.json`, the 404 fallback, request metrics, tracing, the body limit and the timeout.
pub fn finish_router<S>(api: OpenApiRouter<S>, state: S, limits: Limits) -> (Router, OpenApi)
where
    S: Clone + Send + Sync + 'static,
{
    // Install the recorder before the first request is counted.
    crate::metrics::prometheus();
    let (router, openapi) = api
        .routes(utoipa_axum::routes!(crate::health::health))
        .routes(utoipa_axum::routes!(crate::metrics::metrics_handler))
        .split_for_parts();
    // Serialized once and shared: the router is cloned for every connection, and a document held by
    // value would be copied with it.
    let spec = axum::body::Bytes::from(serde_json::to_vec(&openapi).unwrap_or_default());
    let router = router
        .route(
            "/openapi.json",
            get(move || {
                // A reference-counted handle: no copy of the document per request.
                let spec = spec.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        spec,
                    )
                }
            }),
        )
        .route_layer(middleware::from_fn(track_http))
        .fallback(crate::error::not_found)
        .method_not_allowed_fallback(crate::error::method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            with_timeout(req, next, limits.timeout)
        }))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(TraceLayer::new_for_http());
    (router, openapi)
}

async fn with_timeout(request: Request, next: Next, limit: Duration) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request took longer than {} s and was abandoned (REQUEST_TIMEOUT_SECS)",
                limit.as_secs()
            ),
            serde_json::json!({ "timeout_secs": limit.as_secs() }),
        )
        .into_response(),
    }
}

/// Binds `address:port` (port 0 picks a free one).
pub async fn bind(config: &CommonConfig, port: u16, port_var: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind((config.bind_address, port))
        .await
        .with_context(|| {
            format!(
                "{port_var}: cannot listen on {}:{port}",
                config.bind_address
            )
        })
}

/// Serves until SIGTERM or Ctrl-C, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, router: Router) -> anyhow::Result<()> {
    serve_until(listener, router, shutdown_signal()).await
}

/// Serves until `stop` completes, then lets in-flight requests finish.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
        .context("the HTTP server failed")
}

/// Completes on SIGTERM (how compose and Kubernetes stop containers) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// A bound, ready-to-run service: tests read its port, `main` runs it until a shutdown signal.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    openapi: OpenApi,
}

impl Application {
    /// Binds the listener for a finished router (port 0 picks a free port).
    pub async fn bind(
        config: &crate::config::ServiceConfig,
        port_var: &str,
        (router, openapi): (Router, OpenApi),
    ) -> anyhow::Result<Self> {
        let listener = bind(&config.common, config.port, port_var).await?;
        Ok(Self {
            listener,
            router,
            openapi,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The OpenAPI document the service serves at `/openapi.json`.
    pub fn openapi(&self) -> &OpenApi {
        &self.openapi
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!(address = ?self.listener.local_addr().ok(), "listening");
        serve(self.listener, self.router).await
    }

    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        serve_until(self.listener, self.router, stop).await
    }
}
