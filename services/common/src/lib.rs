//! What the three HTTP services share (their typed env config is `churn-config`): logging, the `{error, details}` API error,
//! `/health`, `/ready` probes, Prometheus metrics, the middleware stack and graceful shutdown.

pub mod auth;
pub mod error;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod query;
pub mod server;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;

pub use churn_config::{CommonConfig, ConfigError, Env, Limits, ServiceConfig};
pub use error::{ApiError, ApiJson, ErrorBody, JsonBody};
pub use health::{Check, Readiness};
pub use query::{ApiQuery, QueryError, QueryParams};
pub use server::{Application, Infra, finish_router, finish_router_with, serve, serve_until};
