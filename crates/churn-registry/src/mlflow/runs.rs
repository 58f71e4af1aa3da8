//! Runs in MLflow's shapes: each run with its params, tags and metric history; get, search, history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::filter::{self, SearchRequest, max_results, page_offset, paginate};
use super::shapes::{Metric, Param, Run, RunData, RunInfo, RunInputs, Tag};
use super::{Page, experiment_id, millis, search, tag};
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
