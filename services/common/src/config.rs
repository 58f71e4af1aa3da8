//! Typed configuration from environment variables; a bad value stops start-up naming the variable.
//!
//! Every variable is documented in `sample.env`. Services read through an [`Env`] so tests can pass a map
//! instead of mutating the process environment.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use churn_store::ObjectStoreUrl;
use churn_store::objects::S3Options;

/// A configuration variable that is missing or does not parse.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: {hint}")]
    Missing { name: String, hint: String },
    #[error("{name}={value:?} is invalid: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

/// Where configuration values come from.
#[derive(Debug, Clone, Default)]
pub enum Env {
    /// The process environment.
    #[default]
    Process,
    /// A fixed map (tests, or values layered over the process environment).
    Map(HashMap<String, String>),
}

impl Env {
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The variable's value; empty strings count as unset so `VAR=` in an env file means "default".
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match self {
            Env::Process => std::env::var(name).ok(),
            Env::Map(map) => map.get(name).cloned(),
        };
        value.filter(|v| !v.trim().is_empty())
    }

    /// Parses the variable, or returns `default` when it is unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => parse_value(name, &raw),
        }
    }

    /// Parses the variable when it is set.
    pub fn parse_opt<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|raw| parse_value(name, &raw))
            .transpose()
    }

    /// A boolean: true/false, 1/0, yes/no, on/off.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(invalid(name, &raw, "expected true or false")),
            },
        }
    }

    fn s3_options(&self) -> S3Options {
        S3Options::from_lookup(|name| self.get(name))
    }
}

fn parse_value<T>(name: &str, raw: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    raw.trim()
        .parse()
        .map_err(|e: T::Err| invalid(name, raw, &e.to_string()))
}

fn invalid(name: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

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

/// Minimum length of ADMIN_TOKEN; shorter tokens are guessable.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Settings every service shares.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub database_url: String,
    /// Largest number of pooled database connections.
    pub database_max_connections: u32,
    /// How long start-up waits for the database before giving up.
    pub database_wait_secs: u64,
    pub object_store_url: ObjectStoreUrl,
    pub s3: S3Options,
    /// Address to listen on.
    pub bind_address: IpAddr,
    /// Bearer token for admin routes; admin routes are refused when it is unset.
    pub admin_token: Option<String>,
    pub log_format: LogFormat,
    /// Request body size limit and timeout (MAX_BODY_BYTES, REQUEST_TIMEOUT_SECS).
    pub limits: crate::server::Limits,
    pub classifier_url: ServiceUrl,
    pub synthesizer_url: ServiceUrl,
    pub scheduler_url: ServiceUrl,
    /// Async runtime worker threads (TOKIO_WORKER_THREADS; default one per core).
    pub worker_threads: usize,
}

/// Default ports, one per service.
pub const CLASSIFIER_PORT: u16 = 8000;
pub const SYNTHESIZER_PORT: u16 = 8001;
pub const SCHEDULER_PORT: u16 = 8002;

impl CommonConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let object_store_url = match env.get("OBJECT_STORE_URL") {
            Some(raw) => raw
                .parse::<ObjectStoreUrl>()
                .map_err(|e| invalid("OBJECT_STORE_URL", &raw, &e.to_string()))?,
            None => ObjectStoreUrl::File {
                dir: default_object_dir(),
            },
        };
        // Checked here only so that a typo in AWS_ALLOW_HTTP is an error rather than "false".
        env.flag("AWS_ALLOW_HTTP", false)?;
        let s3 = env.s3_options();
        let admin_token = env.get("ADMIN_TOKEN");
        if let Some(token) = &admin_token
            && token.trim().len() < MIN_ADMIN_TOKEN_LEN
        {
            return Err(invalid(
                "ADMIN_TOKEN",
                "<hidden>",
                &format!(
                    "must be at least {MIN_ADMIN_TOKEN_LEN} characters (try: openssl rand -hex 32)"
                ),
            ));
        }
        let database_max_connections = env.parse_or("DATABASE_MAX_CONNECTIONS", 10u32)?;
        if database_max_connections == 0 {
            return Err(invalid(
                "DATABASE_MAX_CONNECTIONS",
                "0",
                "must be at least 1",
            ));
        }
        // tokio reads this variable itself and panics on an empty or bad value: it is parsed here
        // instead, so empty means the default (as everywhere in sample.env) and bad is a named error.
        let default_threads =
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let worker_threads = env.parse_or("TOKIO_WORKER_THREADS", default_threads)?;
        if worker_threads == 0 {
            return Err(invalid("TOKIO_WORKER_THREADS", "0", "must be at least 1"));
        }
        Ok(Self {
            database_url: env
                .get("DATABASE_URL")
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/churn".to_owned()),
            database_max_connections,
            database_wait_secs: env.parse_or("DATABASE_WAIT_SECS", 30u64)?,
            object_store_url,
            s3,
            bind_address: env.parse_or("BIND_ADDRESS", IpAddr::from([127, 0, 0, 1]))?,
            admin_token: admin_token.map(|t| t.trim().to_owned()),
            log_format: env.parse_or("LOG_FORMAT", LogFormat::Text)?,
            limits: limits(env)?,
            classifier_url: env.parse_or("CLASSIFIER_URL", local_url(CLASSIFIER_PORT))?,
            synthesizer_url: env.parse_or("SYNTHESIZER_URL", local_url(SYNTHESIZER_PORT))?,
            scheduler_url: env.parse_or("SCHEDULER_URL", local_url(SCHEDULER_PORT))?,
            worker_threads,
        })
    }
}

/// The shared settings plus the port one service listens on.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub common: CommonConfig,
    pub port: u16,
}

impl ServiceConfig {
    /// Reads the shared settings and `port_var` (e.g. CLASSIFIER_PORT), defaulting to `default_port`.
    pub fn from_env(env: &Env, port_var: &str, default_port: u16) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_env(env)?,
            port: env.parse_or(port_var, default_port)?,
        })
    }
}

fn limits(env: &Env) -> Result<crate::server::Limits, ConfigError> {
    let defaults = crate::server::Limits::default();
    let body_bytes = env.parse_or("MAX_BODY_BYTES", defaults.body_bytes)?;
    let timeout = env.parse_or("REQUEST_TIMEOUT_SECS", defaults.timeout.as_secs())?;
    if body_bytes < 1024 {
        return Err(invalid(
            "MAX_BODY_BYTES",
            &body_bytes.to_string(),
            "must be at least 1024",
        ));
    }
    if timeout == 0 {
        return Err(invalid("REQUEST_TIMEOUT_SECS", "0", "must be at least 1"));
    }
    Ok(crate::server::Limits {
        body_bytes,
        timeout: std::time::Duration::from_secs(timeout),
    })
}

fn local_url(port: u16) -> ServiceUrl {
    ServiceUrl(
        url::Url::parse(&format!("http://127.0.0.1:{port}"))
            .unwrap_or_else(|_| unreachable!("a literal URL parses")),
    )
}

/// `./var/objects` under the working directory: a local run keeps artifacts beside the checkout.
fn default_object_dir() -> PathBuf {
    std::env::current_dir()
        .unwrap_or_else(|_| PathBuf::from("/tmp"))
        .join("var/objects")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_suit_a_local_run() {
        let config = CommonConfig::from_env(&Env::from_pairs::<&str, &str>([])).expect("defaults");
        assert_eq!(config.bind_address.to_string(), "127.0.0.1");
        assert_eq!(config.classifier_url.to_string(), "http://127.0.0.1:8000");
        assert!(matches!(
            config.object_store_url,
            ObjectStoreUrl::File { .. }
        ));
        assert_eq!(config.admin_token, None);
    }

    #[test]
    fn sample_env_as_written_is_a_valid_configuration() {
        let pairs = include_str!("../../../sample.env")
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .filter_map(|line| line.split_once('='));
        let config = CommonConfig::from_env(&Env::from_pairs(pairs)).expect("sample.env parses");
        // Empty means the default: one worker per core.
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        assert_eq!(config.worker_threads, cores);
        assert_eq!(config.limits, crate::server::Limits::default());
    }

    #[test]
    fn an_invalid_variable_is_named_in_the_error() {
        for (name, value) in [
            ("OBJECT_STORE_URL", "ftp://x"),
            ("BIND_ADDRESS", "localhost:80"),
            ("LOG_FORMAT", "xml"),
            ("CLASSIFIER_URL", "classifier"),
            ("ADMIN_TOKEN", "short"),
            ("AWS_ALLOW_HTTP", "maybe"),
            ("DATABASE_MAX_CONNECTIONS", "-3"),
            ("MAX_BODY_BYTES", "10"),
            ("REQUEST_TIMEOUT_SECS", "0"),
            ("TOKIO_WORKER_THREADS", "0"),
            ("TOKIO_WORKER_THREADS", "many"),
        ] {
            let err = CommonConfig::from_env(&Env::from_pairs([(name, value)]))
                .expect_err(name)
                .to_string();
            assert!(err.starts_with(name), "{err}");
        }
    }

    #[test]
    fn s3_settings_come_from_the_standard_aws_variables() {
        let env = Env::from_pairs([
            ("OBJECT_STORE_URL", "s3://models/prod"),
            ("AWS_ENDPOINT_URL", "http://minio:9000"),
            ("AWS_ACCESS_KEY_ID", "key"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_ALLOW_HTTP", "true"),
        ]);
        let config = CommonConfig::from_env(&env).expect("valid");
        assert_eq!(config.s3.endpoint.as_deref(), Some("http://minio:9000"));
        assert!(config.s3.allow_http);
        assert_eq!(config.object_store_url.to_string(), "s3://models/prod");
    }
}
