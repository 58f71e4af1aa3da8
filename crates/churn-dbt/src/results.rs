//! What one dbt invocation did, in the vocabulary of the ops tables: the command, its status, and each
//! node's (or source's) result, built from the parsed artifacts.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::Error;
use crate::artifacts::{RunResults, Sources};
pub use crate::status::{FreshnessStatus, NodeStatus};

/// The dbt commands the platform runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbtCommand {
    Build,
    SourceFreshness,
    DocsGenerate,
}

impl DbtCommand {
    /// The name stored in `ops.dbt_invocations.command`.
    pub fn as_str(self) -> &'static str {
        match self {
            DbtCommand::Build => "build",
            DbtCommand::SourceFreshness => "source freshness",
            DbtCommand::DocsGenerate => "docs generate",
        }
    }

    /// dbt's arguments for the command.
    pub(crate) fn args(self) -> &'static [&'static str] {
        match self {
            DbtCommand::Build => &["build"],
            DbtCommand::SourceFreshness => &["source", "freshness"],
            // --static also writes static_index.html: one file that serves the whole site
            DbtCommand::DocsGenerate => &["docs", "generate", "--static"],
        }
    }
}

impl fmt::Display for DbtCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of node a result is about: the first part of its unique id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    Model,
    Test,
    UnitTest,
    Snapshot,
    Seed,
    Source,
    Analysis,
    Operation,
    SqlOperation,
    Function,
    Exposure,
    Metric,
    SemanticModel,
    SavedQuery,
}

impl ResourceType {
    const ALL: [(ResourceType, &'static str); 14] = [
        (ResourceType::Model, "model"),
        (ResourceType::Test, "test"),
        (ResourceType::UnitTest, "unit_test"),
        (ResourceType::Snapshot, "snapshot"),
        (ResourceType::Seed, "seed"),
        (ResourceType::Source, "source"),
        (ResourceType::Analysis, "analysis"),
        (ResourceType::Operation, "operation"),
        (ResourceType::SqlOperation, "sql_operation"),
        (ResourceType::Function, "function"),
        (ResourceType::Exposure, "exposure"),
        (ResourceType::Metric, "metric"),
        (ResourceType::SemanticModel, "semantic_model"),
        (ResourceType::SavedQuery, "saved_query"),
    ];

    /// The type named by a unique id such as `model.churn.dim_date`.
    pub fn of_unique_id(unique_id: &str) -> Option<Self> {
        let prefix = unique_id.split('.').next()?;
        Self::ALL
            .iter()
            .find(|(_, name)| *name == prefix)
            .map(|(t, _)| *t)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, name)| *name)
            .unwrap_or("model")
    }
}

/// How an invocation ended, from dbt's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvocationStatus {
    /// Exit code 0: everything ran; warnings allowed.
    Success,
    /// Exit code 1: dbt ran, and some node failed.
    Failure,
    /// Any other exit: dbt itself failed, though it still wrote results.
    Error,
}

impl InvocationStatus {
    pub(crate) fn from_exit_code(code: Option<i32>) -> Self {
        match code {
            Some(0) => InvocationStatus::Success,
            Some(1) => InvocationStatus::Failure,
            _ => InvocationStatus::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InvocationStatus::Success => "success",
            InvocationStatus::Failure => "failure",
            InvocationStatus::Error => "error",
        }
    }
}

/// One node's result in a `dbt build`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeResult {
    pub unique_id: String,
    pub resource_type: ResourceType,
    pub status: NodeStatus,
    /// The node's "execute" phase (else "compile"), when dbt timed one.
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub execution_seconds: f64,
    /// Rows the adapter reported; `None` when it reported none (views, DDL).
    pub rows_affected: Option<i64>,
    /// Tests: the failing rows.
    pub failures: Option<i64>,
    pub message: Option<String>,
    pub relation_name: Option<String>,
    pub thread_id: Option<String>,
    pub adapter_response: Map<String, Value>,
}

/// One source's freshness in a `dbt source freshness`.
#[derive(Debug, Clone, PartialEq)]
pub struct FreshnessResult {
    pub unique_id: String,
    pub status: FreshnessStatus,
    pub max_loaded_at: Option<DateTime<Utc>>,
    pub snapshotted_at: Option<DateTime<Utc>>,
    pub age_seconds: Option<f64>,
    /// warn_after, error_after and filter, as configured.
    pub criteria: Map<String, Value>,
    pub execution_seconds: Option<f64>,
    /// Why the freshness could not be measured (runtime errors only).
    pub error: Option<String>,
}

/// One dbt invocation and everything it reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub command: DbtCommand,
    pub invocation_id: Uuid,
    pub status: InvocationStatus,
    pub exit_code: Option<i32>,
    pub dbt_version: String,
    pub schema_version: String,
    pub started_at: Option<DateTime<Utc>>,
    pub generated_at: DateTime<Utc>,
    pub elapsed_seconds: f64,
    /// The command line as dbt reports it (`args.invocation_command`).
    pub invocation_command: Option<String>,
    pub args: Map<String, Value>,
    /// `dbt build`: every node.
    pub nodes: Vec<NodeResult>,
    /// `dbt source freshness`: every source with a freshness check.
    pub freshness: Vec<FreshnessResult>,
}

impl Invocation {
    pub(crate) fn from_run_results(
        command: DbtCommand,
        exit_code: Option<i32>,
        artifact: RunResults,
        path: &std::path::Path,
    ) -> Result<Self, Error> {
        let nodes = artifact
            .results
            .into_iter()
            .map(|r| {
                let resource_type =
                    ResourceType::of_unique_id(&r.unique_id).ok_or_else(|| Error::Artifact {
                        path: path.to_path_buf(),
                        reason: format!("unknown resource type in unique id {:?}", r.unique_id),
                    })?;
                let phase = r
                    .timing
                    .iter()
                    .find(|t| t.name == "execute")
                    .or_else(|| r.timing.iter().find(|t| t.name == "compile"));
                Ok(NodeResult {
                    resource_type,
                    status: r.status,
                    started_at: phase.and_then(|t| t.started_at),
                    completed_at: phase.and_then(|t| t.completed_at),
                    execution_seconds: r.execution_time.max(0.0),
                    rows_affected: r
                        .adapter_response
                        .get("rows_affected")
                        .and_then(Value::as_i64)
                        .filter(|n| *n >= 0),
                    failures: r.failures.filter(|n| *n >= 0),
                    message: r.message,
                    relation_name: r.relation_name,
                    thread_id: r.thread_id,
                    adapter_response: r.adapter_response,
                    unique_id: r.unique_id,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self {
            command,
            invocation_id: artifact.metadata.invocation_id,
            status: InvocationStatus::from_exit_code(exit_code),
            exit_code,
            dbt_version: artifact.metadata.dbt_version,
            schema_version: artifact.metadata.dbt_schema_version,
            started_at: artifact.metadata.invocation_started_at,
            generated_at: artifact.metadata.generated_at,
            elapsed_seconds: artifact.elapsed_time.max(0.0),
            invocation_command: artifact
                .args
                .get("invocation_command")
                .and_then(Value::as_str)
                .map(str::to_owned),
            args: artifact.args,
            nodes,
            freshness: Vec::new(),
        })
    }

    pub(crate) fn from_sources(
        command: DbtCommand,
        exit_code: Option<i32>,
        artifact: Sources,
    ) -> Self {
        let freshness = artifact
            .results
            .into_iter()
            .map(|r| FreshnessResult {
                unique_id: r.unique_id,
                status: r.status,
                max_loaded_at: r.max_loaded_at,
                snapshotted_at: r.snapshotted_at,
                age_seconds: r.max_loaded_at_time_ago_in_s,
                criteria: r.criteria.unwrap_or_default(),
                execution_seconds: r.execution_time.map(|t| t.max(0.0)),
                error: r.error.map(|e| match e {
                    Value::String(s) => s,
                    other => other.to_string(),
                }),
            })
            .collect();
        Self {
            command,
            invocation_id: artifact.metadata.invocation_id,
            status: InvocationStatus::from_exit_code(exit_code),
            exit_code,
            dbt_version: artifact.metadata.dbt_version,
            schema_version: artifact.metadata.dbt_schema_version,
            started_at: artifact.metadata.invocation_started_at,
            generated_at: artifact.metadata.generated_at,
            elapsed_seconds: artifact.elapsed_time.max(0.0),
            invocation_command: None,
            args: Map::new(),
            nodes: Vec::new(),
            freshness,
        }
    }

    /// The nodes of a given type, e.g. every test.
    pub fn nodes_of(&self, resource_type: ResourceType) -> impl Iterator<Item = &NodeResult> {
        self.nodes
            .iter()
            .filter(move |n| n.resource_type == resource_type)
    }

    /// The result of one node, by unique id.
    pub fn node(&self, unique_id: &str) -> Option<&NodeResult> {
        self.nodes.iter().find(|n| n.unique_id == unique_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types_come_from_the_unique_id_prefix() {
        assert_eq!(
            ResourceType::of_unique_id("model.churn.dim_date"),
            Some(ResourceType::Model)
        );
        assert_eq!(
            ResourceType::of_unique_id("unit_test.churn.dim_date.t"),
            Some(ResourceType::UnitTest)
        );
        assert_eq!(ResourceType::of_unique_id("gizmo.churn.x"), None);
        for (t, name) in ResourceType::ALL {
            assert_eq!(t.as_str(), name);
        }
    }

    #[test]
    fn failures_are_errors_fails_and_runtime_errors_not_warnings_or_skips() {
        let failing: Vec<_> = [
            NodeStatus::Success,
            NodeStatus::Error,
            NodeStatus::Fail,
            NodeStatus::Warn,
            NodeStatus::Skipped,
            NodeStatus::PartialSuccess,
            NodeStatus::Pass,
            NodeStatus::RuntimeError,
            NodeStatus::NoOp,
        ]
        .into_iter()
        .filter(|s| s.is_failure())
        .map(NodeStatus::as_str)
        .collect();
        assert_eq!(
            failing,
            ["error", "fail", "partial success", "runtime error"]
        );
        assert!(FreshnessStatus::RuntimeError.is_failure() && !FreshnessStatus::Warn.is_failure());
    }

    #[test]
    fn exit_codes_map_to_invocation_statuses() {
        assert_eq!(
            InvocationStatus::from_exit_code(Some(0)),
            InvocationStatus::Success
        );
        assert_eq!(
            InvocationStatus::from_exit_code(Some(1)),
            InvocationStatus::Failure
        );
        assert_eq!(
            InvocationStatus::from_exit_code(Some(2)),
            InvocationStatus::Error
        );
        assert_eq!(
            InvocationStatus::from_exit_code(None),
            InvocationStatus::Error
        );
    }
}
