//! Settings every service shares: the database, the object store, listening, admin token, limits, logs.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::{ConfigError, DatabaseUrl, Env, ObjectStoreUrl, S3Options, Secret};

/// The database a local run uses when DATABASE_URL is unset.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/churn";

/// Default ports, one per service.
pub const CLASSIFIER_PORT: u16 = 8000;
pub const SYNTHESIZER_PORT: u16 = 8001;
pub const SCHEDULER_PORT: u16 = 8002;

/// Minimum length of ADMIN_TOKEN and PREDICT_API_KEY; shorter ones are guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "text" | "pretty" | "compact" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected text or json".to_owned()),
        }
    }
}

/// A base URL of another service, e.g. `http://classifier:8000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrl(pub url::Url);

impl FromStr for ServiceUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let url =
            url::Url::parse(s).map_err(|e| format!("{e}; expected e.g. http://127.0.0.1:8000"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(
                "expected an http(s) URL with a host, e.g. http://127.0.0.1:8000".to_owned(),
            );
        }
        Ok(ServiceUrl(url))
    }
}

impl std::fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

impl ServiceUrl {
    /// `http://127.0.0.1:<port>`.
    pub fn local(port: u16) -> Self {
        ServiceUrl(
            url::Url::parse(&format!("http://127.0.0.1:{port}"))
                .unwrap_or_else(|_| unreachable!("a literal URL parses")),
        )
    }
}

/// Limits every service applies to connections and requests, so that slow, idle, stuck or too many
/// clients cannot exhaust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body (MAX_BODY_BYTES).
    pub body_bytes: usize,
    /// Longest a request may take, body included, before it is answered with 408 (REQUEST_TIMEOUT_SECS).
    pub timeout: Duration,
    /// Longest a client may take to send a request's headers, counted from when the connection is ready
    /// for the next request (HEADER_READ_TIMEOUT_SECS); a slow or partial header is cut off.
    pub header_read_timeout: Duration,
    /// An idle keep-alive connection (no request in flight, no bytes either way) is closed after this
    /// (KEEPALIVE_IDLE_SECS; the header timeout above bounds it too).
    pub keep_alive_idle: Duration,
    /// Most open connections; more are closed as soon as they are accepted (MAX_CONNECTIONS).
    pub max_connections: usize,
    /// Most requests handled at once; more are shed with 503 and `Retry-After` rather than queued
    /// (MAX_CONCURRENT_REQUESTS). `/health`, `/ready` and `/metrics` are not counted.
    pub max_concurrent_requests: usize,
    /// After SIGTERM, how long in-flight requests and connections get before they are cut
    /// (SHUTDOWN_GRACE_SECS).
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 2 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            keep_alive_idle: Duration::from_secs(5),
            max_connections: 1024,
            max_concurrent_requests: 256,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl Limits {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Limits::default();
        let secs = |name: &str, default: Duration, max: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(env.number_in(
                name,
                default.as_secs(),
                1..=max,
            )?))
        };
        Ok(Limits {
            body_bytes: env.number_in(
                "MAX_BODY_BYTES",
                defaults.body_bytes,
                1024..=1024 * 1024 * 1024,
            )?,
            timeout: secs("REQUEST_TIMEOUT_SECS", defaults.timeout, 3600)?,
            header_read_timeout: secs(
                "HEADER_READ_TIMEOUT_SECS",
                defaults.header_read_timeout,
                3600,
            )?,
            keep_alive_idle: secs("KEEPALIVE_IDLE_SECS", defaults.keep_alive_idle, 3600)?,
            max_connections: env.number_in(
                "MAX_CONNECTIONS",
                defaults.max_connections,
                1..=1_000_000,
            )?,
            max_concurrent_requests: env.number_in(
                "MAX_CONCURRENT_REQUESTS",
                defaults.max_concurrent_requests,
                1..=1_000_000,
            )?,
            shutdown_grace: secs("SHUTDOWN_GRACE_SECS", defaults.shutdown_grace, 3600)?,
        })
    }
}

/// The PostgreSQL roles migration V11 (and V6) create, one per service, each with the variable its
/// password comes from. Whoever migrates sets the password of every role whose variable is set.
pub const DATABASE_ROLES: [DatabaseRole; 5] = [
    DatabaseRole {
        name: "churn_classifier",
        password_var: "CLASSIFIER_DB_PASSWORD",
    },
    DatabaseRole {
        name: "churn_synthesizer",
        password_var: "SYNTHESIZER_DB_PASSWORD",
    },
    DatabaseRole {
        name: "churn_scheduler",
        password_var: "SCHEDULER_DB_PASSWORD",
    },
    DatabaseRole {
        name: "churn_dbt",
        password_var: "DBT_DB_PASSWORD",
    },
    DatabaseRole {
        name: "churn_readonly",
        password_var: "READONLY_DB_PASSWORD",
    },
];

/// Shortest role password accepted.
pub const MIN_DB_PASSWORD_LEN: usize = 12;

/// A service's PostgreSQL role and the variable holding its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseRole {
    pub name: &'static str,
    pub password_var: &'static str,
}

/// A role's password, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePassword {
    pub role: DatabaseRole,
    pub password: Secret,
}

/// The database a process uses: DATABASE_URL (default [`DEFAULT_DATABASE_URL`]) and its pool settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    /// Largest number of pooled connections (DATABASE_MAX_CONNECTIONS, default 10).
    pub max_connections: u32,
    /// How long start-up waits for the database before giving up (DATABASE_WAIT_SECS, default 30).
    pub wait: Duration,
    /// Whether a service applies the migrations (and sets the role passwords below) at start
    /// (DATABASE_MIGRATE, default true). Off where DATABASE_URL is the service's own role, which may not
    /// change the schema: compose migrates once, as the schema owner, with `churnctl migrate`.
    pub migrate: bool,
    /// The passwords of the service roles ([`DATABASE_ROLES`]) whose variable is set (at least
    /// [`MIN_DB_PASSWORD_LEN`] characters); an unset one leaves its role as it is.
    pub role_passwords: Vec<RolePassword>,
}

impl DatabaseConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let url = match env.get("DATABASE_URL") {
            Some(raw) => DatabaseUrl::parse(&raw)
                .map_err(|e| ConfigError::invalid("DATABASE_URL", "<hidden>", e))?,
            None => DatabaseUrl::parse(DEFAULT_DATABASE_URL)
                .unwrap_or_else(|_| unreachable!("the default URL parses")),
        };
        let mut role_passwords = Vec::new();
        for role in DATABASE_ROLES {
            if let Some(password) = env.secret(role.password_var, MIN_DB_PASSWORD_LEN)? {
                role_passwords.push(RolePassword { role, password });
            }
        }
        Ok(Self {
            url,
            max_connections: env.number_in("DATABASE_MAX_CONNECTIONS", 10u32, 1..=1000)?,
            wait: Duration::from_secs(env.number_in("DATABASE_WAIT_SECS", 30u64, 0..=86_400)?),
            migrate: env.flag("DATABASE_MIGRATE", true)?,
            role_passwords,
        })
    }

    /// The configured password of `role`, if any.
    pub fn role_password(&self, role: &str) -> Option<&Secret> {
        self.role_passwords
            .iter()
            .find(|p| p.role.name == role)
            .map(|p| &p.password)
    }
}

/// The object store a process uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStoreConfig {
    pub url: ObjectStoreUrl,
    pub s3: S3Options,
}

impl ObjectStoreConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            url: ObjectStoreUrl::from_env(env)?,
            s3: S3Options::from_env(env)?,
        })
    }
}

/// Settings every service shares.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub database: DatabaseConfig,
    pub objects: ObjectStoreConfig,
    /// Address to listen on (BIND_ADDRESS, default 127.0.0.1).
    pub bind_address: IpAddr,
    /// Bearer token for admin routes; admin routes are refused when it is unset (ADMIN_TOKEN).
    pub admin_token: Option<Secret>,
    /// Token for reads (console, jobs, runs, MLflow reads, artifact downloads); reads are open when it
    /// is unset (READ_TOKEN). ADMIN_TOKEN, and REGISTRY_TOKEN on the MLflow routes, read as well.
    pub read_token: Option<Secret>,
    /// Token for MLflow registry writes (alias moves and deletes); ADMIN_TOKEN is accepted there too
    /// (REGISTRY_TOKEN).
    pub registry_token: Option<Secret>,
    pub log_format: LogFormat,
    pub limits: Limits,
    pub classifier_url: ServiceUrl,
    pub synthesizer_url: ServiceUrl,
    pub scheduler_url: ServiceUrl,
    /// Async runtime worker threads (TOKIO_WORKER_THREADS; default one per core).
    pub worker_threads: usize,
}

impl CommonConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        // tokio reads this variable itself and panics on an empty or bad value: it is parsed here
        // instead, so empty means the default (as everywhere in sample.env) and bad is a named error.
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Ok(Self {
            database: DatabaseConfig::from_env(env)?,
            objects: ObjectStoreConfig::from_env(env)?,
            bind_address: env.parse_or("BIND_ADDRESS", IpAddr::from([127, 0, 0, 1]))?,
            admin_token: env.secret("ADMIN_TOKEN", MIN_TOKEN_LEN)?,
            read_token: distinct_token(env, "READ_TOKEN")?,
            registry_token: distinct_token(env, "REGISTRY_TOKEN")?,
            log_format: env.parse_or("LOG_FORMAT", LogFormat::Text)?,
            limits: Limits::from_env(env)?,
            classifier_url: env.parse_or("CLASSIFIER_URL", ServiceUrl::local(CLASSIFIER_PORT))?,
            synthesizer_url: env
                .parse_or("SYNTHESIZER_URL", ServiceUrl::local(SYNTHESIZER_PORT))?,
            scheduler_url: env.parse_or("SCHEDULER_URL", ServiceUrl::local(SCHEDULER_PORT))?,
            worker_threads: env.number_in("TOKIO_WORKER_THREADS", cores, 1..=1024)?,
        })
    }
}

/// A scoped token, which must differ from ADMIN_TOKEN (and READ_TOKEN from REGISTRY_TOKEN): the token a
/// caller presents names its scope in the audit log, so two scopes cannot share one.
fn distinct_token(env: &Env, name: &str) -> Result<Option<Secret>, ConfigError> {
    let token = env.secret(name, MIN_TOKEN_LEN)?;
    let others = ["ADMIN_TOKEN", "READ_TOKEN", "REGISTRY_TOKEN"];
    if let Some(t) = &token {
        for other in others.iter().filter(|o| **o != name) {
            if env.get(other).is_some_and(|o| o.trim() == t.expose()) {
                return Err(ConfigError::invalid(
                    name,
                    "<hidden>",
                    format!("must differ from {other} (each token names its own scope)"),
                ));
            }
        }
    }
    Ok(token)
}

/// The shared settings plus the port one service listens on.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub common: CommonConfig,
    pub port: u16,
    /// The variable the port came from, for error messages (e.g. CLASSIFIER_PORT).
    pub port_var: &'static str,
}

impl ServiceConfig {
    /// Reads the shared settings and `port_var`, defaulting to `default_port`.
    pub fn from_env(
        env: &Env,
        port_var: &'static str,
        default_port: u16,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_env(env)?,
            port: env.parse_or(port_var, default_port)?,
            port_var,
        })
    }
}
