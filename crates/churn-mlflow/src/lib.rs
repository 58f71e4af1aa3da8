//! The MLflow-compatible REST subset under `/api/2.0/mlflow/` and `/api/2.0/mlflow-artifacts/`: MLflow's
//! own client (`MlflowClient`, `mlflow.artifacts.download_artifacts("models:/NAME@ALIAS")`) reads the
//! registry, its runs and its artifacts, and moves aliases with REGISTRY_TOKEN or ADMIN_TOKEN
//! (`MLFLOW_TRACKING_TOKEN`); reads need READ_TOKEN (or either of those) when it is set.
//!
//! One resource a module under [`routes`]; the shapes and the search language live in
//! `churn_registry::mlflow` (the store's "mlflow search"), so this crate only extracts, calls one
//! registry function and answers in MLflow's `{"error_code", "message"}` with MLflow's status codes.
//! A service mounts [`routes`] (any router state: the MLflow routes carry their own) and applies
//! [`document_patterns`] to its OpenAPI document.

mod error;
mod openapi;
mod params;
pub mod routes;

use churn_registry::Registry;

pub use error::{MlflowError, MlflowErrorBody};
pub use openapi::document_patterns;
pub use routes::routes;

/// What the MLflow routes need: the registry they show, and the tokens that guard them (alias moves
/// need REGISTRY_TOKEN or ADMIN_TOKEN, refused with 403 when neither is set; reads need READ_TOKEN or a
/// stronger token when READ_TOKEN is set).
#[derive(Debug, Clone)]
pub struct MlflowState {
    pub registry: Registry,
    pub tokens: churn_service::auth::Tokens,
}
