//! MLflow's REST shapes (registered models, versions, experiments, runs, files), and the search fields of
//! experiments (the other searches run in SQL, `sql.rs`).

use serde::Serialize;

use super::filter::{Field, Searchable, Value};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A key/value tag (registered models, versions, experiments and runs share the shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowTag))]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// MLflow's `RegisteredModelAlias`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowRegisteredModelAlias))]
pub struct RegisteredModelAlias {
    pub alias: String,
    pub version: String,
}

/// MLflow's `ModelVersion`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowModelVersion))]
pub struct ModelVersion {
    pub name: String,
    /// The version number as a string, as MLflow sends it.
    pub version: String,
    /// Milliseconds since the epoch.
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    /// Always `None`: this registry has aliases, not stages.
    pub current_stage: String,
    pub description: String,
    /// `mlflow-artifacts:/models/NAME/VERSION`
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Always `READY`: a version exists only once its artifact is stored.
    pub status: String,
    /// `churn.flavor`, `churn.artifact_sha256`, `churn.artifact_size` and the parent version.
    pub tags: Vec<Tag>,
    pub run_link: String,
    pub aliases: Vec<String>,
}

/// MLflow's `RegisteredModel`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowRegisteredModel))]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub description: String,
    /// The newest version (the registry has no stages, so one).
    pub latest_versions: Vec<ModelVersion>,
    pub tags: Vec<Tag>,
    pub aliases: Vec<RegisteredModelAlias>,
}

/// MLflow's `Experiment`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowExperiment))]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    /// Always `active`.
    pub lifecycle_stage: String,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub tags: Vec<Tag>,
}

/// MLflow's `RunInfo`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowRunInfo))]
pub struct RunInfo {
    pub run_id: String,
    pub run_uuid: String,
    pub run_name: String,
    pub experiment_id: String,
    pub user_id: String,
    /// `RUNNING`, `FINISHED`, `FAILED` or `KILLED`.
    pub status: String,
    pub start_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
}

/// MLflow's `Metric`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowMetric))]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

/// MLflow's `Param`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowParam))]
pub struct Param {
    pub key: String,
    pub value: String,
}

/// MLflow's `RunData`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowRunData))]
pub struct RunData {
    pub metrics: Vec<Metric>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

/// MLflow's `RunInputs` (no datasets are recorded: empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowRunInputs))]
pub struct RunInputs {}

/// MLflow's `Run`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowRun))]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
    pub inputs: RunInputs,
}

/// MLflow's artifact `FileInfo`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowFileInfo))]
pub struct FileInfo {
    /// Relative to the listed folder.
    pub path: String,
    pub is_dir: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
}

fn find_tag(tags: &[Tag], key: &str) -> Option<Value> {
    tags.iter()
        .find(|t| t.key == key)
        .map(|t| Value::Text(t.value.clone()))
}

impl Searchable for Experiment {
    fn field(&self, field: &Field) -> Option<Value> {
        match field {
            Field::Attribute(a) => match a.as_str() {
                "name" => Some(Value::Text(self.name.clone())),
                "experiment_id" => Some(Value::Text(self.experiment_id.clone())),
                "creation_time" => Some(Value::Number(self.creation_time as f64)),
                "last_update_time" => Some(Value::Number(self.last_update_time as f64)),
                _ => None,
            },
            Field::Tag(k) => find_tag(&self.tags, k),
            _ => None,
        }
    }
}
