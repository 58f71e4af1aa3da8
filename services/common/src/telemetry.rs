//! Logging set-up: `tracing` to stdout as text or JSON, filtered by RUST_LOG (default `info`).

use tracing_subscriber::EnvFilter;

use churn_config::LogFormat;

/// Installs the global subscriber once; later calls (e.g. from tests) do nothing.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
}
