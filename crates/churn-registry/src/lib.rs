//! An MLflow-style model registry over PostgreSQL (metadata) and an object store (artifacts).
//!
//! - Registered models hold monotonically numbered versions; each version's artifact is written once
//!   under a unique key with its SHA-256 recorded, and verified on every load.
//! - Aliases ([`Alias::CHAMPION`], [`Alias::CHALLENGER`], …) point at versions; moving one is a single transaction that
//!   also sends a `NOTIFY registry_events` so servers can reload at once.
//! - Model references: `registry:NAME@ALIAS`, `registry:NAME/VERSION` (MLflow's `models:/NAME@ALIAS`
//!   and `models:/NAME/VERSION` too), or a local file path.
//! - [`mlflow`] shows all of it in MLflow's REST shapes, for MLflow's own clients.

mod alias;
pub mod mlflow;
pub mod overview;
mod reference;
mod registry;
mod runs;

pub use alias::{Alias, AliasWatcher};
pub use reference::{ModelRef, Selector};
pub use registry::{
    ALIAS_CHANNEL, ARTIFACT_PREFIX, AliasEvent, GarbageReport, Lineage, ModelLock, ModelSummary,
    ModelVersion, NewVersion, Registry, sha256_hex,
};
pub use runs::{Decision, NewRun, Run, RunStatus};

/// Everything that can go wrong in the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid model reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("invalid {what} {value:?}: {rule}")]
    InvalidName {
        what: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error("model {name:?} is not registered")]
    ModelNotFound { name: String },
    #[error("model {name:?} has no version {version}")]
    VersionNotFound { name: String, version: i32 },
    #[error("model {name:?} has no alias {alias:?}")]
    AliasNotFound { name: String, alias: String },
    #[error(
        "artifact {key} failed its checksum: recorded SHA-256 {expected}, stored bytes hash to {actual}; refusing to load a tampered or corrupt artifact"
    )]
    ChecksumMismatch {
        key: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{name}@{alias} moved while the decision was made (judged against {}, now {}); judge again",
        judged.map_or("none".to_owned(), |v| format!("version {v}")),
        now.map_or("none".to_owned(), |v| format!("version {v}"))
    )]
    AliasMoved {
        name: String,
        alias: String,
        judged: Option<churn_core::VersionNumber>,
        now: Option<churn_core::VersionNumber>,
    },
    #[error("run {run_id} does not exist")]
    RunNotFound { run_id: churn_core::RunId },
    #[error("run {run_id:?} does not exist")]
    RunIdNotFound { run_id: String },
    #[error(
        "experiment {experiment:?} does not exist (an experiment is named by the runs logged to it)"
    )]
    ExperimentNotFound { experiment: String },
    #[error("no artifact at {path:?}: a model version's files are under models/NAME/VERSION/")]
    ArtifactNotFound { path: String },
    #[error(
        "{name}@{alias} cannot be deleted: the classifier serves it; point it at another version instead"
    )]
    ProtectedAlias { name: String, alias: String },
    #[error("invalid parameter {value:?}: {reason}")]
    InvalidParameter { value: String, reason: String },
    #[error("metrics and lineage must be JSON objects: {0}")]
    InvalidJson(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("audit log: {0}")]
    Audit(#[from] churn_store::Error),
    #[error("object store error: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}
