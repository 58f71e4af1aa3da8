//! The registry seen through MLflow's REST shapes: registered models, model versions, aliases,
//! experiments, runs, metric histories and the artifacts of `models:/NAME@ALIAS`, as MLflow's clients
//! send and parse them (`mlflow/protos/model_registry.proto`, `service.proto`, `mlflow_artifacts.proto`).
//! No HTTP here: the scheduler maps these to routes.
//!
//! Mapping choices:
//! - A version's `source` (and its download URI) is `mlflow-artifacts:/models/NAME/VERSION`, which
//!   MLflow's client resolves against its tracking URI: it lists and downloads that folder through
//!   `/api/2.0/mlflow-artifacts/artifacts`, where the folder holds `model.json` (the registered
//!   artifact, every one of this platform's is JSON) and `profile.json` (its drift reference, when it has
//!   one), each read from the object store and checked against its recorded SHA-256.
//! - An experiment is a distinct `registry.runs.experiment`; its id is a stable number derived from its
//!   name (MLflow ids are strings of digits).
//! - Run ids are our UUIDs (hyphenated); run status is upper-cased (`FINISHED`); a run's metrics are the
//!   value at its largest step per key, as MLflow's `get_run` returns them.

pub mod filter;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use uuid::Uuid;

use crate::mlflow::filter::{
    Field, Filter, Order, SearchRequest, Searchable, Value, max_results, page_offset, paginate,
};
use crate::{Alias, Error, Registry, RunStatus};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The file name of a version's artifact in its MLflow artifact folder.
pub const MODEL_FILE: &str = "model.json";
/// The file name of a version's training-data profile in its MLflow artifact folder.
pub const PROFILE_FILE: &str = "profile.json";

/// A key/value tag (registered models, versions, experiments and runs share the shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(as = MlflowTag))]
pub struct Tag {
    pub key: String,
    pub value: String,
}

fn tag(key: &str, value: impl Into<String>) -> Tag {
    Tag {
        key: key.to_owned(),
        value: value.into(),
    }
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

/// A page of results and the token of the next page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// Whether `text` can be stored at all (PostgreSQL text holds no NUL): a name that cannot be stored
/// names nothing, and is answered as missing rather than sent to the database.
fn storable(text: &str) -> bool {
    !text.contains('\0')
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A version's MLflow artifact folder (relative to the artifact root).
pub fn artifact_folder(name: &str, version: i32) -> String {
    format!("models/{name}/{version}")
}

/// What `model-versions/get-download-uri` answers, and a version's `source`.
pub fn download_uri(name: &str, version: i32) -> String {
    format!("mlflow-artifacts:/{}", artifact_folder(name, version))
}

/// The stable MLflow id of an experiment: 15 decimal digits derived from its name.
pub fn experiment_id(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    format!("{}", u64::from_be_bytes(first) % 1_000_000_000_000_000)
}

/// A version number as MLflow sends it ("3"): digits that name no version (0) are a missing version,
/// anything else an invalid parameter.
fn parse_version(name: &str, version: &str) -> Result<i32, Error> {
    let digits = version.strip_suffix('\n').unwrap_or(version);
    match digits.parse::<i32>() {
        Ok(0) if digits.bytes().all(|b| b.is_ascii_digit()) => Err(Error::VersionNotFound {
            name: name.to_owned(),
            version: 0,
        }),
        Ok(n) if n > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(Error::InvalidParameter {
            value: version.to_owned(),
            reason: format!("a version of {name} is a positive integer, e.g. \"3\""),
        }),
    }
}

// ----- rows ------------------------------------------------------------------------------------------

struct ModelRow {
    name: String,
    description: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

struct AliasRow {
    model_name: String,
    alias: String,
    version: i32,
    updated_at: DateTime<Utc>,
}

struct RunRow {
    run_id: Uuid,
    experiment: String,
    status: RunStatus,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    parent_run_id: Option<Uuid>,
    training_rows: Option<i64>,
    training_data_sha256: Option<String>,
    code_version: String,
}

struct MetricRow {
    run_id: Uuid,
    key: String,
    step: i64,
    value: f64,
    logged_at: DateTime<Utc>,
}

struct PairRow {
    run_id: Uuid,
    key: String,
    value: String,
}

impl Registry {
    async fn mlflow_models(&self, name: Option<&str>) -> Result<Vec<ModelRow>, Error> {
        Ok(sqlx::query_as!(
            ModelRow,
            "select name, description, created_at, updated_at from registry.registered_models
             where $1::text is null or name = $1 order by name",
            name,
        )
        .fetch_all(self.pool())
        .await?)
    }

    async fn mlflow_versions(&self, name: Option<&str>) -> Result<Vec<crate::ModelVersion>, Error> {
        Ok(sqlx::query_as!(
            crate::ModelVersion,
            r#"select model_name, version, run_id, artifact_key, artifact_sha256, artifact_size, flavor,
                      description, metrics as "metrics: Json<serde_json::Value>",
                      lineage as "lineage: Json<serde_json::Value>", parent_version, created_at,
                      profile_key, profile_sha256
               from registry.model_versions where $1::text is null or model_name = $1
               order by model_name, version desc"#,
            name,
        )
        .fetch_all(self.pool())
        .await?)
    }

    async fn mlflow_aliases(&self, name: Option<&str>) -> Result<Vec<AliasRow>, Error> {
        Ok(sqlx::query_as!(
            AliasRow,
            "select model_name, alias, version, updated_at from registry.aliases
             where $1::text is null or model_name = $1 order by model_name, alias",
            name,
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Runs (all, or those of the given ids) with their params, tags and metric histories.
    async fn mlflow_runs(&self, ids: Option<&[Uuid]>) -> Result<Vec<RunRecord>, Error> {
        let runs = sqlx::query_as!(
            RunRow,
            r#"select run_id, experiment, status as "status: RunStatus", started_at, ended_at,
                      parent_run_id, training_rows, training_data_sha256, code_version
               from registry.runs where $1::uuid[] is null or run_id = any($1)
               order by started_at desc"#,
            ids,
        )
        .fetch_all(self.pool())
        .await?;
        let ids: Vec<Uuid> = runs.iter().map(|r| r.run_id).collect();
        let params = sqlx::query_as!(
            PairRow,
            "select run_id, key, value from registry.run_params where run_id = any($1) order by key",
            &ids,
        )
        .fetch_all(self.pool())
        .await?;
        let tags = sqlx::query_as!(
            PairRow,
            "select run_id, key, value from registry.run_tags where run_id = any($1) order by key",
            &ids,
        )
        .fetch_all(self.pool())
        .await?;
        let metrics = sqlx::query_as!(
            MetricRow,
            "select run_id, key, step, value, logged_at from registry.run_metrics
             where run_id = any($1) order by key, step",
            &ids,
        )
        .fetch_all(self.pool())
        .await?;
        let mut records: Vec<RunRecord> = runs
            .into_iter()
            .map(|row| RunRecord {
                row,
                params: Vec::new(),
                tags: Vec::new(),
                metrics: Vec::new(),
            })
            .collect();
        let index: BTreeMap<Uuid, usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.row.run_id, i))
            .collect();
        for p in params {
            if let Some(&i) = index.get(&p.run_id) {
                records[i].params.push((p.key, p.value));
            }
        }
        for t in tags {
            if let Some(&i) = index.get(&t.run_id) {
                records[i].tags.push((t.key, t.value));
            }
        }
        for m in metrics {
            if let Some(&i) = index.get(&m.run_id) {
                records[i].metrics.push(m);
            }
        }
        Ok(records)
    }
}

/// A run with everything MLflow shows of it.
struct RunRecord {
    row: RunRow,
    params: Vec<(String, String)>,
    tags: Vec<(String, String)>,
    /// Every logged value, by key then step.
    metrics: Vec<MetricRow>,
}

impl RunRecord {
    /// The value at the largest step per key (rows are ordered by key, then step).
    fn latest_metrics(&self) -> Vec<Metric> {
        let mut latest: BTreeMap<&str, &MetricRow> = BTreeMap::new();
        for m in &self.metrics {
            latest.insert(m.key.as_str(), m);
        }
        latest
            .into_values()
            .map(|m| Metric {
                key: m.key.clone(),
                value: m.value,
                timestamp: millis(m.logged_at),
                step: m.step,
            })
            .collect()
    }

    fn to_mlflow(&self) -> Run {
        let row = &self.row;
        let id = row.run_id.to_string();
        let run_name = format!("{}-{}", row.experiment, &id[..8]);
        let mut tags: Vec<Tag> = self.tags.iter().map(|(k, v)| tag(k, v.clone())).collect();
        tags.push(tag("mlflow.runName", run_name.clone()));
        tags.push(tag("churn.code_version", row.code_version.clone()));
        if let Some(rows) = row.training_rows {
            tags.push(tag("churn.training_rows", rows.to_string()));
        }
        if let Some(sha) = &row.training_data_sha256 {
            tags.push(tag("churn.training_data_sha256", sha.clone()));
        }
        if let Some(parent) = row.parent_run_id {
            tags.push(tag("mlflow.parentRunId", parent.to_string()));
        }
        Run {
            info: RunInfo {
                run_uuid: id.clone(),
                run_name,
                experiment_id: experiment_id(&row.experiment),
                user_id: String::new(),
                status: row.status.as_str().to_ascii_uppercase(),
                start_time: millis(row.started_at),
                end_time: row.ended_at.map(millis),
                artifact_uri: format!("mlflow-artifacts:/runs/{id}"),
                lifecycle_stage: "active".to_owned(),
                run_id: id,
            },
            data: RunData {
                metrics: self.latest_metrics(),
                params: self
                    .params
                    .iter()
                    .map(|(k, v)| Param {
                        key: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                tags,
            },
            inputs: RunInputs {},
        }
    }
}

impl Searchable for Run {
    fn field(&self, field: &Field) -> Option<Value> {
        match field {
            Field::Attribute(a) => match a.as_str() {
                "status" => Some(Value::Text(self.info.status.clone())),
                "run_name" => Some(Value::Text(self.info.run_name.clone())),
                "run_id" => Some(Value::Text(self.info.run_id.clone())),
                "start_time" => Some(Value::Number(self.info.start_time as f64)),
                "end_time" => self.info.end_time.map(|t| Value::Number(t as f64)),
                _ => None,
            },
            Field::Metric(k) => self
                .data
                .metrics
                .iter()
                .find(|m| &m.key == k)
                .map(|m| Value::Number(m.value)),
            Field::Param(k) => self
                .data
                .params
                .iter()
                .find(|p| &p.key == k)
                .map(|p| Value::Text(p.value.clone())),
            Field::Tag(k) => find_tag(&self.data.tags, k),
        }
    }
}

fn find_tag(tags: &[Tag], key: &str) -> Option<Value> {
    tags.iter()
        .find(|t| t.key == key)
        .map(|t| Value::Text(t.value.clone()))
}

impl Searchable for RegisteredModel {
    fn field(&self, field: &Field) -> Option<Value> {
        match field {
            Field::Attribute(a) => match a.as_str() {
                "name" => Some(Value::Text(self.name.clone())),
                "creation_timestamp" => Some(Value::Number(self.creation_timestamp as f64)),
                "timestamp" | "last_updated_timestamp" => {
                    Some(Value::Number(self.last_updated_timestamp as f64))
                }
                _ => None,
            },
            Field::Tag(k) => find_tag(&self.tags, k),
            _ => None,
        }
    }
}

impl Searchable for ModelVersion {
    fn field(&self, field: &Field) -> Option<Value> {
        match field {
            Field::Attribute(a) => match a.as_str() {
                "name" => Some(Value::Text(self.name.clone())),
                "run_id" => self.run_id.clone().map(Value::Text),
                "version_number" => self.version.parse().ok().map(Value::Number),
                "creation_timestamp" => Some(Value::Number(self.creation_timestamp as f64)),
                "timestamp" | "last_updated_timestamp" => {
                    Some(Value::Number(self.last_updated_timestamp as f64))
                }
                _ => None,
            },
            Field::Tag(k) => find_tag(&self.tags, k),
            _ => None,
        }
    }
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

fn model_version(v: &crate::ModelVersion, aliases: &[AliasRow]) -> ModelVersion {
    let mine: Vec<&AliasRow> = aliases
        .iter()
        .filter(|a| a.model_name == v.model_name && a.version == v.version)
        .collect();
    let updated = mine
        .iter()
        .map(|a| a.updated_at)
        .chain([v.created_at])
        .max()
        .unwrap_or(v.created_at);
    let mut tags = vec![
        tag("churn.flavor", v.flavor.clone()),
        tag("churn.artifact_sha256", v.artifact_sha256.clone()),
        tag("churn.artifact_size", v.artifact_size.to_string()),
    ];
    if let Some(parent) = v.parent_version {
        tags.push(tag("churn.parent_version", parent.to_string()));
    }
    ModelVersion {
        name: v.model_name.clone(),
        version: v.version.to_string(),
        creation_timestamp: millis(v.created_at),
        last_updated_timestamp: millis(updated),
        current_stage: "None".to_owned(),
        description: v.description.clone(),
        source: download_uri(&v.model_name, v.version),
        run_id: v.run_id.map(|id| id.to_string()),
        status: "READY".to_owned(),
        tags,
        run_link: String::new(),
        aliases: mine.iter().map(|a| a.alias.clone()).collect(),
    }
}

fn registered_model(
    m: &ModelRow,
    versions: &[crate::ModelVersion],
    aliases: &[AliasRow],
) -> RegisteredModel {
    let mine: Vec<&AliasRow> = aliases.iter().filter(|a| a.model_name == m.name).collect();
    let updated = mine
        .iter()
        .map(|a| a.updated_at)
        .chain([m.updated_at])
        .max()
        .unwrap_or(m.updated_at);
    RegisteredModel {
        name: m.name.clone(),
        creation_timestamp: millis(m.created_at),
        last_updated_timestamp: millis(updated),
        description: m.description.clone(),
        latest_versions: versions
            .iter()
            .filter(|v| v.model_name == m.name)
            .max_by_key(|v| v.version)
            .map(|v| model_version(v, aliases))
            .into_iter()
            .collect(),
        tags: Vec::new(),
        aliases: mine
            .iter()
            .map(|a| RegisteredModelAlias {
                alias: a.alias.clone(),
                version: a.version.to_string(),
            })
            .collect(),
    }
}

/// Filters, orders (the default when the caller gave none) and pages `items`.
fn search<T: Searchable>(
    mut items: Vec<T>,
    request: &SearchRequest,
    patterns: (&'static str, &'static str),
    default_order: impl Fn(&T, &T) -> std::cmp::Ordering,
    limits: (i64, i64),
) -> Result<Page<T>, Error> {
    let filter = Filter::parse(patterns.0, request.filter.as_deref())?;
    let order = Order::parse(patterns.1, &request.order_by)?;
    let limit = max_results(request.max_results, limits.0, limits.1)?;
    let offset = page_offset(request.page_token.as_deref())?;
    items.retain(|item| filter.accepts(item));
    items.sort_by(|a, b| order.compare(a, b).then_with(|| default_order(a, b)));
    let (items, next_page_token) = paginate(items, offset, limit);
    Ok(Page {
        items,
        next_page_token,
    })
}

/// `registered-models/search` (default order: name).
pub async fn search_registered_models(
    registry: &Registry,
    request: &SearchRequest,
) -> Result<Page<RegisteredModel>, Error> {
    let (models, versions, aliases) = (
        registry.mlflow_models(None).await?,
        registry.mlflow_versions(None).await?,
        registry.mlflow_aliases(None).await?,
    );
    let all = models
        .iter()
        .map(|m| registered_model(m, &versions, &aliases))
        .collect();
    search(
        all,
        request,
        (
            filter::REGISTERED_MODEL_FILTER,
            filter::REGISTERED_MODEL_ORDER,
        ),
        |a, b| a.name.cmp(&b.name),
        (100, 1000),
    )
}

/// `registered-models/get`.
pub async fn get_registered_model(
    registry: &Registry,
    name: &str,
) -> Result<RegisteredModel, Error> {
    if !storable(name) {
        return Err(Error::ModelNotFound {
            name: name.to_owned(),
        });
    }
    let models = registry.mlflow_models(Some(name)).await?;
    let model = models.first().ok_or_else(|| Error::ModelNotFound {
        name: name.to_owned(),
    })?;
    let versions = registry.mlflow_versions(Some(name)).await?;
    let aliases = registry.mlflow_aliases(Some(name)).await?;
    Ok(registered_model(model, &versions, &aliases))
}

/// `model-versions/get`.
pub async fn get_model_version(
    registry: &Registry,
    name: &str,
    version: &str,
) -> Result<ModelVersion, Error> {
    let number = parse_version(name, version)?;
    if !storable(name) {
        return Err(Error::VersionNotFound {
            name: name.to_owned(),
            version: number,
        });
    }
    let v = registry.get(name, number).await?;
    let aliases = registry.mlflow_aliases(Some(name)).await?;
    Ok(model_version(&v, &aliases))
}

/// `model-versions/search` (default order: name, then newest version first).
pub async fn search_model_versions(
    registry: &Registry,
    request: &SearchRequest,
) -> Result<Page<ModelVersion>, Error> {
    let (versions, aliases) = (
        registry.mlflow_versions(None).await?,
        registry.mlflow_aliases(None).await?,
    );
    let all = versions
        .iter()
        .map(|v| model_version(v, &aliases))
        .collect();
    search(
        all,
        request,
        (filter::MODEL_VERSION_FILTER, filter::MODEL_VERSION_ORDER),
        |a, b| {
            a.name.cmp(&b.name).then_with(|| {
                let (x, y): (i64, i64) = (
                    a.version.parse().unwrap_or(0),
                    b.version.parse().unwrap_or(0),
                );
                y.cmp(&x)
            })
        },
        (10_000, 200_000),
    )
}

/// `registered-models/alias` (GET).
pub async fn model_version_by_alias(
    registry: &Registry,
    name: &str,
    alias: &str,
) -> Result<ModelVersion, Error> {
    if !storable(name) || !storable(alias) {
        return Err(Error::AliasNotFound {
            name: name.to_owned(),
            alias: alias.to_owned(),
        });
    }
    let v = registry
        .by_alias(name, alias)
        .await?
        .ok_or_else(|| Error::AliasNotFound {
            name: name.to_owned(),
            alias: alias.to_owned(),
        })?;
    let aliases = registry.mlflow_aliases(Some(name)).await?;
    Ok(model_version(&v, &aliases))
}

/// `model-versions/get-download-uri`.
pub async fn model_version_download_uri(
    registry: &Registry,
    name: &str,
    version: &str,
) -> Result<String, Error> {
    let v = get_model_version(registry, name, version).await?;
    Ok(v.source)
}

/// `registered-models/alias` (POST): points `alias` at `version`. Moving [`Alias::CHAMPION`] is a
/// promotion by hand: it is recorded as a decision (metric `manual`, with `actor` as evidence) in the
/// same transaction, compare-and-set against the champion it replaces, and NOTIFY swaps the classifier's
/// model. Returns the version the alias pointed at before.
pub async fn set_alias(
    registry: &Registry,
    name: &str,
    alias: &str,
    version: &str,
    actor: &str,
) -> Result<Option<i32>, Error> {
    if !storable(name) {
        return Err(Error::ModelNotFound {
            name: name.to_owned(),
        });
    }
    registry
        .mlflow_models(Some(name))
        .await?
        .first()
        .ok_or_else(|| Error::ModelNotFound {
            name: name.to_owned(),
        })?;
    let number = parse_version(name, version)?;
    registry
        .point_alias_by_hand(
            name,
            alias,
            number,
            "promoted by hand through the MLflow API (set_registered_model_alias)",
            serde_json::json!({ "via": "mlflow", "actor": actor }),
        )
        .await
}

/// `registered-models/alias` (DELETE). [`Alias::CHAMPION`] cannot be deleted (the classifier serves
/// it; move it instead).
pub async fn delete_alias(registry: &Registry, name: &str, alias: &str) -> Result<(), Error> {
    if !storable(name) {
        return Err(Error::ModelNotFound {
            name: name.to_owned(),
        });
    }
    if !storable(alias) {
        return Err(Error::AliasNotFound {
            name: name.to_owned(),
            alias: alias.to_owned(),
        });
    }
    registry
        .mlflow_models(Some(name))
        .await?
        .first()
        .ok_or_else(|| Error::ModelNotFound {
            name: name.to_owned(),
        })?;
    if Alias::CHAMPION == alias && registry.by_alias(name, alias).await?.is_some() {
        return Err(Error::ProtectedAlias {
            name: name.to_owned(),
            alias: alias.to_owned(),
        });
    }
    if registry.delete_alias(name, alias).await? {
        Ok(())
    } else {
        Err(Error::AliasNotFound {
            name: name.to_owned(),
            alias: alias.to_owned(),
        })
    }
}

struct ExperimentRow {
    experiment: String,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

async fn experiments(registry: &Registry) -> Result<Vec<Experiment>, Error> {
    let rows = sqlx::query_as!(
        ExperimentRow,
        r#"select experiment, min(started_at) as "first!", max(coalesce(ended_at, started_at)) as "last!"
           from registry.runs group by experiment order by experiment"#,
    )
    .fetch_all(registry.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let id = experiment_id(&r.experiment);
            Experiment {
                artifact_location: format!("mlflow-artifacts:/experiments/{id}"),
                experiment_id: id,
                name: r.experiment,
                lifecycle_stage: "active".to_owned(),
                creation_time: millis(r.first),
                last_update_time: millis(r.last),
                tags: Vec::new(),
            }
        })
        .collect())
}

/// `experiments/get-by-name`.
pub async fn experiment_by_name(registry: &Registry, name: &str) -> Result<Experiment, Error> {
    experiments(registry)
        .await?
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error::ExperimentNotFound {
            experiment: name.to_owned(),
        })
}

/// `experiments/get`.
pub async fn experiment(registry: &Registry, id: &str) -> Result<Experiment, Error> {
    experiments(registry)
        .await?
        .into_iter()
        .find(|e| e.experiment_id == id)
        .ok_or_else(|| Error::ExperimentNotFound {
            experiment: id.to_owned(),
        })
}

/// `experiments/search` (default order: name).
pub async fn search_experiments(
    registry: &Registry,
    request: &SearchRequest,
) -> Result<Page<Experiment>, Error> {
    search(
        experiments(registry).await?,
        request,
        (filter::EXPERIMENT_FILTER, filter::EXPERIMENT_ORDER),
        |a, b| a.name.cmp(&b.name),
        (1000, 50_000),
    )
}

fn run_uuid(run_id: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(run_id.trim()).map_err(|_| Error::RunIdNotFound {
        run_id: run_id.to_owned(),
    })
}

/// `runs/get`.
pub async fn get_run(registry: &Registry, run_id: &str) -> Result<Run, Error> {
    let id = run_uuid(run_id)?;
    registry
        .mlflow_runs(Some(&[id]))
        .await?
        .first()
        .map(RunRecord::to_mlflow)
        .ok_or_else(|| Error::RunIdNotFound {
            run_id: run_id.to_owned(),
        })
}

/// `runs/search` over the given experiments (all when empty; default order: newest first).
pub async fn search_runs(
    registry: &Registry,
    experiment_ids: &[String],
    request: &SearchRequest,
) -> Result<Page<Run>, Error> {
    let runs = registry
        .mlflow_runs(None)
        .await?
        .iter()
        .map(RunRecord::to_mlflow)
        .filter(|r| experiment_ids.is_empty() || experiment_ids.contains(&r.info.experiment_id))
        .collect();
    search(
        runs,
        request,
        (filter::RUN_FILTER, filter::RUN_ORDER),
        |a, b| {
            b.info
                .start_time
                .cmp(&a.info.start_time)
                .then_with(|| a.info.run_id.cmp(&b.info.run_id))
        },
        (1000, 50_000),
    )
}

/// `metrics/get-history`: every logged value of `key`, by step (empty when the run never logged it).
pub async fn metric_history(
    registry: &Registry,
    run_id: &str,
    key: &str,
    request: &SearchRequest,
) -> Result<Page<Metric>, Error> {
    let id = run_uuid(run_id)?;
    let records = registry.mlflow_runs(Some(&[id])).await?;
    let record = records.first().ok_or_else(|| Error::RunIdNotFound {
        run_id: run_id.to_owned(),
    })?;
    let history: Vec<Metric> = record
        .metrics
        .iter()
        .filter(|m| m.key == key)
        .map(|m| Metric {
            key: m.key.clone(),
            value: m.value,
            timestamp: millis(m.logged_at),
            step: m.step,
        })
        .collect();
    let limit = max_results(request.max_results, 25_000, 25_000)?;
    let offset = page_offset(request.page_token.as_deref())?;
    let (items, next_page_token) = paginate(history, offset, limit);
    Ok(Page {
        items,
        next_page_token,
    })
}

/// Where an artifact path points: a version's folder, one of its files, or a run's (empty) folder.
enum ArtifactPath {
    Folder(String, i32),
    File(String, i32, &'static str),
    Run(Uuid),
}

fn artifact_path(path: &str) -> Option<ArtifactPath> {
    if !storable(path) {
        return None;
    }
    let path = path.trim_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["models", name, version] => Some(ArtifactPath::Folder(
            (*name).to_owned(),
            version.parse().ok().filter(|v: &i32| *v > 0)?,
        )),
        ["models", name, version, file] => {
            let file = [MODEL_FILE, PROFILE_FILE].into_iter().find(|f| f == file)?;
            Some(ArtifactPath::File(
                (*name).to_owned(),
                version.parse().ok().filter(|v: &i32| *v > 0)?,
                file,
            ))
        }
        ["runs", id] => Uuid::parse_str(id).ok().map(ArtifactPath::Run),
        _ => None,
    }
}

fn no_artifact(path: &str) -> Error {
    Error::ArtifactNotFound {
        path: path.to_owned(),
    }
}

/// `mlflow-artifacts/artifacts?path=…`: the files of a version's folder (a file's path lists nothing,
/// as MLflow's server answers).
pub async fn list_artifacts(registry: &Registry, path: &str) -> Result<Vec<FileInfo>, Error> {
    match artifact_path(path).ok_or_else(|| no_artifact(path))? {
        ArtifactPath::Folder(name, version) => {
            let v = registry.get(&name, version).await.map_err(|e| match e {
                Error::VersionNotFound { .. } => no_artifact(path),
                e => e,
            })?;
            let mut files = vec![FileInfo {
                path: MODEL_FILE.to_owned(),
                is_dir: false,
                file_size: Some(v.artifact_size),
            }];
            if v.profile_key.is_some() {
                // The profile's size is not recorded; MLflow's client needs it only for ranged
                // downloads, which this server does not offer.
                files.push(FileInfo {
                    path: PROFILE_FILE.to_owned(),
                    is_dir: false,
                    file_size: None,
                });
            }
            Ok(files)
        }
        ArtifactPath::File(name, version, _) => {
            registry
                .get(&name, version)
                .await
                .map_err(|_| no_artifact(path))?;
            Ok(Vec::new())
        }
        ArtifactPath::Run(id) => {
            registry.get_run(id).await.map_err(|_| no_artifact(path))?;
            Ok(Vec::new())
        }
    }
}

/// `mlflow-artifacts/artifacts/{path}`: a file's bytes, read from the object store and checked against
/// the SHA-256 recorded at registration ([`Error::ChecksumMismatch`] otherwise: nothing is sent).
pub async fn read_artifact(registry: &Registry, path: &str) -> Result<Vec<u8>, Error> {
    let Some(ArtifactPath::File(name, version, file)) = artifact_path(path) else {
        return Err(no_artifact(path));
    };
    let v = registry.get(&name, version).await.map_err(|e| match e {
        Error::VersionNotFound { .. } => no_artifact(path),
        e => e,
    })?;
    if file == MODEL_FILE {
        registry.load_artifact(&v).await
    } else {
        registry
            .load_profile(&v)
            .await?
            .ok_or_else(|| no_artifact(path))
    }
}
