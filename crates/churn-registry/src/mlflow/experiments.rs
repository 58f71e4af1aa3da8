//! Experiments in MLflow's shapes: each a distinct `registry.runs.experiment`, found by name, id or search.

use chrono::{DateTime, Utc};

use super::filter::{self, SearchRequest};
use super::shapes::Experiment;
use super::{Page, experiment_id, millis, search};
use crate::{Error, Registry};

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
