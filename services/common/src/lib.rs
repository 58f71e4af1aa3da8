//! What the three HTTP services share: typed env config, logging, the `{error, details}` API error,
//! `/health`, `/ready` probes, Prometheus metrics, the middleware stack and graceful shutdown.

pub mod config;
pub mod error;
pub mod health;
pub mod metrics;
pub mod server;
pub mod telemetry;

pub use config::{CommonConfig, ConfigError, Env, ServiceConfig};
pub use error::{ApiError, ApiJson, ErrorBody, JsonBody};
pub use health::{Check, Readiness};
pub use server::{Application, Infra, Limits, finish_router, serve, serve_until};
