//! Start-up and serving: waiting for the database, migrations, the shared middleware stack and graceful
//! shutdown on SIGTERM or Ctrl-C.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::trace::TraceLayer;

/// A request's id: a ULID (time-ordered, 80 random bits), minted by the service for every request and
/// returned in `X-Request-Id`. Handlers read it from the request's extensions; the classifier keys its
/// inference log by it, so it is never taken from the caller: a caller's own `X-Request-Id` (any
/// value) is kept beside it as `X-Client-Request-Id`, in the request's log span and echoed in the
/// response. A ULID costs no system call (its randomness comes from a thread-local generator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub ulid::Ulid);

/// The header echoing a caller's own request id.
pub const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-client-request-id");

async fn assign_request_id(mut request: Request, next: Next) -> Response {
    let id = ulid::Ulid::generate();
    let mut text = [0u8; ulid::ULID_LEN];
    // A ULID's text is 26 ASCII characters, always a valid header value.
    let value = id
        .array_to_str(&mut text)
        .parse::<axum::http::HeaderValue>()
        .ok();
    let headers = request.headers_mut();
    let client = headers.remove(REQUEST_ID);
    if let Some(client) = &client {
        headers.insert(CLIENT_REQUEST_ID, client.clone());
    }
    if let Some(value) = &value {
        headers.insert(REQUEST_ID, value.clone());
    }
    request.extensions_mut().insert(RequestId(id));
    let mut response = next.run(request).await;
    if let Some(value) = value {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(client) = client {
        response.headers_mut().insert(CLIENT_REQUEST_ID, client);
    }
    response
}

/// The header carrying each request's id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::error::ApiError;
use crate::limits::UNLIMITED_ROUTES;
use crate::metrics::track_http;
use churn_config::{CommonConfig, Limits, ServiceConfig};
use churn_core::Backoff;
use churn_store::ObjectStoreHandle;

/// Runs a service's start-up and serving on a multi-threaded runtime with the configured number of
/// worker threads ([`CommonConfig::worker_threads`]).
pub fn run<F: Future<Output = anyhow::Result<()>>>(
    worker_threads: usize,
    service: F,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(service);
    // Blocking work still going (a training, a stream's producer) must not hold the exit: the service
    // has stopped and closed its records by now.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}

/// The database pool and the object store, shared by a service's handlers and jobs.
#[derive(Debug, Clone)]
pub struct Infra {
    pub pool: PgPool,
    pub objects: ObjectStoreHandle,
}

impl Infra {
    /// Waits for the database (up to DATABASE_WAIT_SECS), applies migrations and sets the service roles'
    /// passwords (unless DATABASE_MIGRATE is off), opens the pool and the object store. Several services
    /// may do this at once: migrations serialize on an advisory lock.
    pub async fn start(config: &CommonConfig) -> anyhow::Result<Infra> {
        let database = &config.database;
        let deadline = Instant::now() + database.wait;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(3));
        let pool = loop {
            match prepare_database(database).await {
                Ok(pool) => break pool,
                Err(churn_store::Error::Connect(e)) if Instant::now() < deadline => {
                    tracing::warn!(error = %e, "database not reachable yet; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => {
                    return Err(e).context(if database.migrate {
                        "DATABASE_URL: the database could not be migrated"
                    } else {
                        "DATABASE_URL"
                    });
                }
            }
        };
        warn_if_superuser(&pool).await;
        let objects = ObjectStoreHandle::open(&config.objects.url, &config.objects.s3)
            .context("OBJECT_STORE_URL")?;
        Ok(Infra { pool, objects })
    }
}

/// Migrates (when DATABASE_MIGRATE is on) and opens the pool.
async fn prepare_database(
    database: &churn_config::DatabaseConfig,
) -> Result<PgPool, churn_store::Error> {
    if database.migrate {
        let applied = churn_store::migrate(database.url.expose()).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied database migrations");
        }
        churn_store::set_role_passwords(database.url.expose(), &database.role_passwords).await?;
    }
    churn_store::connect(database.url.expose(), database.max_connections).await
}

/// A service connected as a superuser can do anything to the warehouse; it still runs (a local run, the
/// tests), but says so: deployed, each service logs in as its own role (README: "Database roles").
async fn warn_if_superuser(pool: &PgPool) {
    match churn_store::connected_role(pool).await {
        Ok(role) if role.superuser => tracing::warn!(
            role = %role.name,
            "DATABASE_URL logs in as a superuser: give this service its own role (churn_classifier, \
             churn_synthesizer, churn_scheduler) so that a compromise cannot reach beyond its grants"
        ),
        Ok(role) => tracing::info!(role = %role.name, "connected to the database"),
        Err(e) => tracing::warn!(error = %e, "could not read the role DATABASE_URL logs in as"),
    }
}

/// Turns a service's documented routes into the served router: adds `/health`, `/metrics`,
/// `/openapi.json`, Swagger UI at `/docs`, the 404 fallback, request metrics, load shedding, tracing with
/// request ids, the body limit and the timeout.
pub fn finish_router<S>(api: OpenApiRouter<S>, state: S, limits: Limits) -> (Router, OpenApi)
where
    S: Clone + Send + Sync + 'static,
{
    finish_router_with(api, state, limits, |_| {})
}

/// [`finish_router`], with `customize` applied to the served document (e.g. limits known only from the
/// configuration) after the shared responses are added.
pub fn finish_router_with<S>(
    api: OpenApiRouter<S>,
    state: S,
    limits: Limits,
    customize: impl FnOnce(&mut serde_json::Value),
) -> (Router, OpenApi)
where
    S: Clone + Send + Sync + 'static,
{
    // Install the recorder before the first request is counted.
    crate::metrics::prometheus();
    let permits = Arc::new(Semaphore::new(limits.max_concurrent_requests));
    let (router, openapi) = api
        .routes(utoipa_axum::routes!(crate::health::health))
        .routes(utoipa_axum::routes!(crate::metrics::metrics_handler))
        .split_for_parts();
    let mut document = serde_json::to_value(&openapi).unwrap_or_default();
    crate::openapi::document_shared_responses(&mut document);
    customize(&mut document);
    crate::openapi::document_security_schemes(&mut document);
    // Serialized once and shared: the router is cloned for every connection, and a document held by
    // value would be copied with it.
    let spec = axum::body::Bytes::from(serde_json::to_vec(&document).unwrap_or_default());
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
        // Swagger UI (its assets compiled in: no download at build or run time) over the same document,
        // named relative to the page so that it also loads behind a proxy's path prefix
        // (/classifier/docs/ reads /classifier/openapi.json).
        .merge(Router::from(
            SwaggerUi::new("/docs").config(SwaggerConfig::new(["../openapi.json"])),
        ))
        .route_layer(middleware::from_fn(track_http))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            shed_when_saturated(req, next, permits.clone(), limits.body_bytes)
        }))
        .fallback(crate::error::not_found)
        .method_not_allowed_fallback(crate::error::method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            with_timeout(req, next, limits.timeout)
        }))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        // Every request gets an id ([`RequestId`]); logs inside the request carry it, and the response
        // echoes it, so an opaque 5xx body can be matched with its logged cause.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let header = |name: &HeaderName| {
                    request
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    uri = %request.uri().path(),
                    request_id = %header(&REQUEST_ID),
                    client_request_id = %header(&CLIENT_REQUEST_ID)
                )
            }),
        )
        .layer(middleware::from_fn(assign_request_id));
    (router, openapi)
}

/// Admits a request when a slot is free; otherwise sheds it at once with 503 and `Retry-After`, so a
/// saturated service answers quickly instead of queueing without bound.
async fn shed_when_saturated(
    request: Request,
    next: Next,
    permits: Arc<Semaphore>,
    body_limit: usize,
) -> Response {
    if UNLIMITED_ROUTES.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    match permits.try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => {
            metrics::counter!("http_requests_shed_total").increment(1);
            // Read (and drop) the body, bounded by the body limit, so the connection stays usable:
            // answering before the body is read would make the client's send fail instead of getting
            // the 503 (authentication refuses before reading on purpose; shedding is not that).
            let _ = axum::body::to_bytes(request.into_body(), body_limit).await;
            let mut response = ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the service is at its concurrency limit (MAX_CONCURRENT_REQUESTS); retry in a second",
                serde_json::json!({ "retry_after_secs": 1 }),
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
            response
        }
    }
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

/// Serves until SIGTERM or Ctrl-C, then lets in-flight requests finish within the shutdown grace.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits) -> anyhow::Result<()> {
    serve_until(listener, router, limits, shutdown_signal()).await
}

/// Serves until `stop` completes, then lets in-flight requests finish within the shutdown grace.
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    crate::transport::serve(listener, router, limits, stop)
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
pub struct Application {
    listener: TcpListener,
    router: Router,
    openapi: OpenApi,
    limits: Limits,
    on_stop: Option<StopHook>,
    after_stop: Option<StopHook>,
}

/// Work to do when the service is told to stop, before its connections are drained (e.g. stopping jobs).
type StopHook = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("listener", &self.listener)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds the listener for a finished router (port 0 picks a free port).
    pub async fn bind(
        config: &ServiceConfig,
        (router, openapi): (Router, OpenApi),
    ) -> anyhow::Result<Self> {
        let listener = bind(&config.common, config.port, config.port_var).await?;
        Ok(Self {
            listener,
            router,
            openapi,
            limits: config.common.limits,
            on_stop: None,
            after_stop: None,
        })
    }

    /// Runs `hook` when the service is told to stop, before open connections are drained.
    pub fn on_stop<F>(mut self, hook: F) -> Self
    where
        F: FnOnce() -> futures::future::BoxFuture<'static, ()> + Send + 'static,
    {
        self.on_stop = Some(Box::new(hook));
        self
    }

    /// Runs `hook` once the server has stopped: every connection drained (or cut at the shutdown grace),
    /// so no request is still being answered (e.g. flushing what requests queued).
    pub fn after_stop<F>(mut self, hook: F) -> Self
    where
        F: FnOnce() -> futures::future::BoxFuture<'static, ()> + Send + 'static,
    {
        self.after_stop = Some(Box::new(hook));
        self
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
        self.run_until(shutdown_signal()).await
    }

    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let hook = self.on_stop;
        let stop = async move {
            stop.await;
            if let Some(hook) = hook {
                hook().await;
            }
        };
        let served = serve_until(self.listener, self.router, self.limits, stop).await;
        if let Some(hook) = self.after_stop {
            hook().await;
        }
        served
    }
}
