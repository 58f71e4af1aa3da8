//! What a scheduled dbt run came to: its freshness check and build, and the failures that make the job
//! fail, each named (`test.churn.assert_no_orphan_predictions (fail: Got 3 results, …)`).

use std::fmt;

use crate::results::{DbtCommand, Invocation, NodeStatus, ResourceType};

/// A model, snapshot or test that failed, or a source past its freshness error threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub command: DbtCommand,
    pub unique_id: String,
    pub resource_type: ResourceType,
    /// dbt's status: error, fail, partial success or runtime error.
    pub status: &'static str,
    pub message: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) if !m.trim().is_empty() => {
                // a database error can span lines: its first line says enough here
                let first = m.trim().lines().next().unwrap_or_default();
                write!(f, "{} ({}: {first})", self.unique_id, self.status)
            }
            _ => write!(f, "{} ({})", self.unique_id, self.status),
        }
    }
}

/// The failures an invocation reports.
pub(crate) fn failures_of(invocation: &Invocation) -> Vec<Failure> {
    let nodes = invocation
        .nodes
        .iter()
        .filter(|n| n.status.is_failure())
        .map(|n| Failure {
            command: invocation.command,
            unique_id: n.unique_id.clone(),
            resource_type: n.resource_type,
            status: n.status.as_str(),
            message: n.message.clone(),
        });
    let sources = invocation
        .freshness
        .iter()
        .filter(|s| s.status.is_failure())
        .map(|s| Failure {
            command: invocation.command,
            unique_id: s.unique_id.clone(),
            resource_type: ResourceType::Source,
            status: s.status.as_str(),
            message: s.error.clone().or_else(|| {
                s.age_seconds
                    .map(|age| format!("newest row is {age:.0} s old"))
            }),
        });
    nodes.chain(sources).collect()
}

/// A scheduled run: `dbt source freshness`, then `dbt build`, then (optionally) `dbt docs generate`.
#[derive(Debug, Clone, PartialEq)]
pub struct DbtOutcome {
    pub freshness: Invocation,
    pub build: Invocation,
    /// `None` when docs were not generated; `Some(Err(reason))` when generating them failed.
    pub docs: Option<Result<(), String>>,
}

impl DbtOutcome {
    /// Every failed node and source, build first.
    pub fn failures(&self) -> Vec<Failure> {
        let mut all = failures_of(&self.build);
        all.extend(failures_of(&self.freshness));
        all
    }

    /// The build's nodes dbt skipped because something upstream failed (in `dbt build`, a failing test
    /// skips everything downstream of what it tests).
    pub fn skipped(&self) -> Vec<&str> {
        self.build
            .nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Skipped)
            .map(|n| n.unique_id.as_str())
            .collect()
    }

    /// No failed node, no stale source, docs generated (when asked for).
    pub fn succeeded(&self) -> bool {
        self.failures().is_empty() && !matches!(self.docs, Some(Err(_)))
    }

    /// The job's error, naming each failure; `None` when the run succeeded.
    pub fn error_message(&self) -> Option<String> {
        let failures = self.failures();
        let mut parts = Vec::new();
        for command in [DbtCommand::Build, DbtCommand::SourceFreshness] {
            let named: Vec<String> = failures
                .iter()
                .filter(|f| f.command == command)
                .map(ToString::to_string)
                .collect();
            if !named.is_empty() {
                let what = if command == DbtCommand::Build {
                    "failed"
                } else {
                    "stale or unmeasurable"
                };
                parts.push(format!(
                    "dbt {command}: {} {what}: {}",
                    named.len(),
                    named.join("; ")
                ));
            }
        }
        let skipped = self.skipped();
        if !parts.is_empty() && !skipped.is_empty() {
            const SHOWN: usize = 10;
            let more = skipped.len().saturating_sub(SHOWN);
            let mut named = skipped
                .iter()
                .take(SHOWN)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            if more > 0 {
                named.push_str(&format!(" and {more} more"));
            }
            parts.push(format!(
                "{} skipped as a consequence: {named}",
                skipped.len()
            ));
        }
        if let Some(Err(reason)) = &self.docs {
            parts.push(format!("dbt docs generate failed: {reason}"));
        }
        (!parts.is_empty()).then(|| parts.join(". "))
    }

    /// Rows written by the build's models and snapshots (for `ops.job_runs.rows_affected`).
    pub fn rows_affected(&self) -> i64 {
        self.build
            .nodes
            .iter()
            .filter(|n| {
                matches!(
                    n.resource_type,
                    ResourceType::Model | ResourceType::Snapshot
                )
            })
            .filter_map(|n| n.rows_affected)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::Map;

    use super::*;
    use crate::results::{FreshnessResult, FreshnessStatus, InvocationStatus, NodeResult};

    fn invocation(command: DbtCommand) -> Invocation {
        Invocation {
            command,
            invocation_id: uuid::Uuid::new_v4(),
            status: InvocationStatus::Success,
            exit_code: Some(0),
            dbt_version: "1.11.16".into(),
            schema_version: "v6".into(),
            started_at: None,
            generated_at: Utc::now(),
            elapsed_seconds: 1.0,
            invocation_command: None,
            args: Map::new(),
            nodes: Vec::new(),
            freshness: Vec::new(),
        }
    }

    fn node(unique_id: &str, status: NodeStatus, message: &str, rows: Option<i64>) -> NodeResult {
        NodeResult {
            unique_id: unique_id.into(),
            resource_type: ResourceType::of_unique_id(unique_id).expect("known type"),
            status,
            started_at: None,
            completed_at: None,
            execution_seconds: 0.1,
            rows_affected: rows,
            failures: None,
            message: Some(message.into()),
            relation_name: None,
            thread_id: None,
            adapter_response: Map::new(),
        }
    }

    #[test]
    fn a_clean_run_succeeds_without_an_error_message() {
        let mut build = invocation(DbtCommand::Build);
        build.nodes = vec![
            node(
                "model.churn.dim_date",
                NodeStatus::Success,
                "SELECT 10",
                Some(10),
            ),
            node(
                "snapshot.churn.customers_snapshot",
                NodeStatus::Success,
                "INSERT 0 5",
                Some(5),
            ),
            node(
                "test.churn.unique_dim_date_date_key",
                NodeStatus::Pass,
                "",
                Some(1),
            ),
            node(
                "test.churn.some_warning",
                NodeStatus::Warn,
                "Got 1 result",
                None,
            ),
            node(
                "model.churn.stg_x",
                NodeStatus::Success,
                "CREATE VIEW",
                None,
            ),
        ];
        let outcome = DbtOutcome {
            freshness: invocation(DbtCommand::SourceFreshness),
            build,
            docs: Some(Ok(())),
        };
        assert!(outcome.succeeded());
        assert_eq!(outcome.error_message(), None);
        assert_eq!(outcome.rows_affected(), 15);
    }

    #[test]
    fn the_error_message_names_every_failed_node_and_stale_source() {
        let mut build = invocation(DbtCommand::Build);
        build.nodes = vec![
            node(
                "model.churn.fct_churn_prediction",
                NodeStatus::Error,
                "Database Error in model\n  relation does not exist",
                None,
            ),
            node(
                "test.churn.assert_no_orphan_predictions",
                NodeStatus::Fail,
                "Got 3 results, configured to fail if != 0",
                None,
            ),
            node("model.churn.fct_drift", NodeStatus::Skipped, "SKIP", None),
        ];
        let mut freshness = invocation(DbtCommand::SourceFreshness);
        freshness.freshness = vec![FreshnessResult {
            unique_id: "source.churn.churn.customers".into(),
            status: FreshnessStatus::Error,
            max_loaded_at: None,
            snapshotted_at: None,
            age_seconds: Some(90000.0),
            criteria: Map::new(),
            execution_seconds: None,
            error: None,
        }];
        let outcome = DbtOutcome {
            freshness,
            build,
            docs: Some(Err("catalog query failed".into())),
        };
        assert!(!outcome.succeeded());
        let message = outcome.error_message().expect("failed");
        assert!(message.contains("dbt build: 2 failed"), "{message}");
        assert!(
            message.contains("model.churn.fct_churn_prediction (error: Database Error in model)"),
            "{message}"
        );
        assert!(
            message.contains("test.churn.assert_no_orphan_predictions (fail: Got 3 results"),
            "{message}"
        );
        assert!(
            message.contains("dbt build: 2 failed")
                && message.contains("1 skipped as a consequence: model.churn.fct_drift"),
            "skipped nodes are named apart from failures: {message}"
        );
        assert_eq!(outcome.skipped(), vec!["model.churn.fct_drift"]);
        assert!(
            message.contains("source.churn.churn.customers (error: newest row is 90000 s old)"),
            "{message}"
        );
        assert!(
            message.contains("docs generate failed: catalog query failed"),
            "{message}"
        );
    }
}
