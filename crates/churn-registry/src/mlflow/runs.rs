//! Runs in MLflow's shapes: each run with its params, tags and metric history; get, search, history.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::filter::{self, SearchRequest, max_results, page_offset, paginate};
use super::shapes::{Metric, Param, Run, RunData, RunInfo, RunInputs, Tag};
use super::sql;
use super::{Page, Search, experiment_id, millis, tag};
use crate::{Error, Registry, RunStatus};

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
    /// The names of the experiments with these MLflow ids. An id is a hash of its name computed here,
    /// not in SQL, so every name is read and hashed; there are few.
    async fn experiments_with_ids(&self, ids: &[String]) -> Result<Vec<String>, Error> {
        let names = sqlx::query_scalar!(
            r#"select distinct experiment as "experiment!" from registry.runs"#
        )
        .fetch_all(self.pool())
        .await?;
        Ok(names
            .into_iter()
            .filter(|name| ids.contains(&experiment_id(name)))
            .collect())
    }

    /// The runs of the given ids with their params, tags and metric histories, newest first.
    async fn mlflow_runs(&self, ids: &[Uuid]) -> Result<Vec<RunRecord>, Error> {
        let runs = sqlx::query_as!(
            RunRow,
            r#"select run_id, experiment, status as "status: RunStatus", started_at, ended_at,
                      parent_run_id, training_rows, training_data_sha256, code_version
               from registry.runs where run_id = any($1) order by started_at desc"#,
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

fn run_uuid(run_id: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(run_id.trim()).map_err(|_| Error::RunIdNotFound {
        run_id: run_id.to_owned(),
    })
}

/// `runs/get`.
pub async fn get_run(registry: &Registry, run_id: &str) -> Result<Run, Error> {
    let id = run_uuid(run_id)?;
    registry
        .mlflow_runs(&[id])
        .await?
        .first()
        .map(RunRecord::to_mlflow)
        .ok_or_else(|| Error::RunIdNotFound {
            run_id: run_id.to_owned(),
        })
}

/// `runs/search` over the given experiments (all when empty; default order: newest first), filtered,
/// ordered and paged in SQL; only the page's runs are loaded.
pub async fn search_runs(
    registry: &Registry,
    experiment_ids: &[String],
    request: &SearchRequest,
) -> Result<Page<Run>, Error> {
    let search = Search::parse(
        request,
        (filter::RUN_FILTER, filter::RUN_ORDER),
        (1000, 50_000),
    )?;
    let experiments = if experiment_ids.is_empty() {
        None
    } else {
        Some(registry.experiments_with_ids(experiment_ids).await?)
    };
    let (ids, next_page_token) =
        sql::run_page(registry.pool(), experiments.as_deref(), &search).await?;
    let mut records: HashMap<Uuid, RunRecord> = registry
        .mlflow_runs(&ids)
        .await?
        .into_iter()
        .map(|r| (r.row.run_id, r))
        .collect();
    let items = ids
        .iter()
        .filter_map(|id| records.remove(id))
        .map(|r| r.to_mlflow())
        .collect();
    Ok(Page {
        items,
        next_page_token,
    })
}

/// `metrics/get-history`: every logged value of `key`, by step (empty when the run never logged it).
pub async fn metric_history(
    registry: &Registry,
    run_id: &str,
    key: &str,
    request: &SearchRequest,
) -> Result<Page<Metric>, Error> {
    let id = run_uuid(run_id)?;
    let records = registry.mlflow_runs(&[id]).await?;
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
