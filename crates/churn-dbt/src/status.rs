//! dbt-core's node and freshness statuses, as its artifacts spell them; both the artifact parser and the
//! result records use them.

use serde::{Deserialize, Serialize};

/// dbt-core's `NodeStatus`: models, snapshots and seeds report success, error, skipped, partial success
/// or no-op; tests pass, fail, warn, error or skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Success,
    Error,
    Fail,
    Warn,
    Skipped,
    #[serde(rename = "partial success")]
    PartialSuccess,
    Pass,
    #[serde(rename = "runtime error")]
    RuntimeError,
    #[serde(rename = "no-op")]
    NoOp,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Success => "success",
            NodeStatus::Error => "error",
            NodeStatus::Fail => "fail",
            NodeStatus::Warn => "warn",
            NodeStatus::Skipped => "skipped",
            NodeStatus::PartialSuccess => "partial success",
            NodeStatus::Pass => "pass",
            NodeStatus::RuntimeError => "runtime error",
            NodeStatus::NoOp => "no-op",
        }
    }

    /// Whether the node failed: a model or snapshot that errored (or only partly succeeded), a test that
    /// failed or could not run. Skipped nodes are a consequence, not a failure of their own.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            NodeStatus::Error
                | NodeStatus::Fail
                | NodeStatus::RuntimeError
                | NodeStatus::PartialSuccess
        )
    }
}

/// dbt-core's `FreshnessStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreshnessStatus {
    Pass,
    Warn,
    Error,
    #[serde(rename = "runtime error")]
    RuntimeError,
}

impl FreshnessStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FreshnessStatus::Pass => "pass",
            FreshnessStatus::Warn => "warn",
            FreshnessStatus::Error => "error",
            FreshnessStatus::RuntimeError => "runtime error",
        }
    }

    /// Past its error threshold, or not measurable (e.g. an empty table).
    pub fn is_failure(self) -> bool {
        matches!(self, FreshnessStatus::Error | FreshnessStatus::RuntimeError)
    }
}
