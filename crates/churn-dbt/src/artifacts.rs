//! dbt's result artifacts as written to the target directory: `run_results.json` (schema v6, written by
//! `dbt build`) and `sources.json` (schema v3, written by `dbt source freshness`). Only the fields the
//! ops tables keep are read; unknown keys are ignored, so newer dbt versions still parse.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::Error;
use crate::status::{FreshnessStatus, NodeStatus};

/// The `metadata` block both artifacts share.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Metadata {
    pub dbt_schema_version: String,
    pub dbt_version: String,
    pub generated_at: DateTime<Utc>,
    pub invocation_id: Uuid,
    #[serde(default)]
    pub invocation_started_at: Option<DateTime<Utc>>,
}

/// `run_results.json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RunResults {
    pub metadata: Metadata,
    pub results: Vec<RunResult>,
    pub elapsed_time: f64,
    #[serde(default)]
    pub args: Map<String, Value>,
}

/// One node's entry in `run_results.json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RunResult {
    pub unique_id: String,
    pub status: NodeStatus,
    #[serde(default)]
    pub timing: Vec<Timing>,
    #[serde(default)]
    pub thread_id: Option<String>,
    pub execution_time: f64,
    #[serde(default)]
    pub adapter_response: Map<String, Value>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub failures: Option<i64>,
    #[serde(default)]
    pub relation_name: Option<String>,
}

/// A phase of a node's run (`compile`, `execute`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Timing {
    pub name: String,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
}

/// `sources.json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Sources {
    pub metadata: Metadata,
    pub results: Vec<SourceResult>,
    pub elapsed_time: f64,
}

/// One source's entry in `sources.json`: a measurement, or (status "runtime error") only the error.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SourceResult {
    pub unique_id: String,
    pub status: FreshnessStatus,
    #[serde(default)]
    pub max_loaded_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub snapshotted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub max_loaded_at_time_ago_in_s: Option<f64>,
    #[serde(default)]
    pub criteria: Option<Map<String, Value>>,
    #[serde(default)]
    pub execution_time: Option<f64>,
    #[serde(default)]
    pub error: Option<Value>,
}

/// Reads and parses an artifact; `Ok(None)` when the file does not exist.
pub(crate) fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Artifact {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_results_file_parses_ignoring_unknown_keys() {
        let json = r#"{
          "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.11.16", "generated_at": "2026-11-26T00:11:58.280813Z",
            "invocation_id": "7d8f85b1-ae35-4288-af20-88631557420f",
            "invocation_started_at": "2026-11-26T00:11:53.347627Z", "env": {}, "future_key": 1},
          "results": [{"status": "fail", "timing": [{"name": "execute",
              "started_at": "2026-11-26T00:11:55.024514Z", "completed_at": "2026-11-26T00:11:55.097270Z"}],
            "thread_id": "Thread-2 (worker)", "execution_time": 0.138,
            "adapter_response": {"_message": "SELECT 3", "code": "SELECT", "rows_affected": 3},
            "message": "Got 3 results, configured to fail if != 0", "failures": 3,
            "unique_id": "test.churn.assert_no_orphan_predictions", "compiled": true,
            "compiled_code": "select 1", "relation_name": null, "batch_results": null}],
          "elapsed_time": 4.25, "args": {"which": "build", "invocation_command": "dbt build"}
        }"#;
        let parsed: RunResults = serde_json::from_str(json).expect("parses");
        assert_eq!(parsed.metadata.dbt_version, "1.11.16");
        assert_eq!(parsed.results[0].status, NodeStatus::Fail);
        assert_eq!(parsed.results[0].failures, Some(3));
        assert_eq!(parsed.results[0].timing[0].name, "execute");
        assert_eq!(parsed.args["which"], "build");
    }

    #[test]
    fn a_sources_file_parses_measurements_and_runtime_errors() {
        let json = r#"{
          "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/sources/v3.json",
            "dbt_version": "1.11.16", "generated_at": "2026-11-26T00:11:49.090794Z",
            "invocation_id": "d38a8597-55c6-4f9d-bd30-7fcc27b0601c"},
          "results": [
            {"unique_id": "source.churn.churn.customers", "max_loaded_at": "2026-11-26T00:11:33.856977+00:00",
             "snapshotted_at": "2026-11-26T00:11:49.020235+00:00", "max_loaded_at_time_ago_in_s": 15.16,
             "status": "pass", "criteria": {"warn_after": {"count": 2, "period": "hour"}},
             "adapter_response": {}, "timing": [], "thread_id": "Thread-2", "execution_time": 0.04},
            {"unique_id": "source.churn.monitoring.drift", "error": "Expected a non-null value", "status": "runtime error"}
          ],
          "elapsed_time": 0.5
        }"#;
        let parsed: Sources = serde_json::from_str(json).expect("parses");
        assert_eq!(parsed.results[0].status, FreshnessStatus::Pass);
        assert_eq!(parsed.results[1].status, FreshnessStatus::RuntimeError);
        assert!(parsed.results[1].max_loaded_at.is_none());
    }

    #[test]
    fn an_unknown_status_is_an_error_naming_it() {
        let json = r#"{"unique_id": "x", "status": "exploded", "execution_time": 1}"#;
        let err = serde_json::from_str::<RunResult>(json).expect_err("unknown status");
        assert!(err.to_string().contains("exploded"), "{err}");
    }
}
