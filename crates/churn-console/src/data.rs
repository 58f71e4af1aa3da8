//! What each console page shows, read from the warehouse. Every query reads an indexed range or a small
//! table (the registry, run records, monitoring results), never the customers table as a whole, so a page
//! costs the same with a thousand customers or a million.

use chrono::{DateTime, Utc};
use churn_core::VersionMetrics;
use churn_registry::overview as registry;
use churn_store::overview as store;
use sqlx::PgPool;
use uuid::Uuid;

use crate::Error;

pub use churn_registry::overview::DecisionLine as Decision;
pub use churn_store::ops::JobRun as RunLine;
pub use churn_store::overview::{DriftCell, DriftVerdict, FileLine, LiveMetric, RejectionCount};
pub use churn_store::traffic_overview::{CohortFigure, ServedWindow};

/// Seconds from a run's start to its finish, once finished.
pub fn run_seconds(run: &RunLine) -> Option<f64> {
    run.finished_at
        .map(|end| (end - run.started_at).num_milliseconds() as f64 / 1000.0)
}

/// A job as the runner knows it (schedule and switches come from the service, not the database).
#[derive(Debug, Clone)]
pub struct JobLine {
    pub name: String,
    pub schedule: String,
    pub enabled: bool,
    pub paused: bool,
    pub next_run: Option<DateTime<Utc>>,
    /// The last run's status and start.
    pub last_run: Option<(String, DateTime<Utc>)>,
}

/// The served model and how it does.
#[derive(Debug, Clone)]
pub struct Champion {
    pub version: i32,
    pub family: Option<String>,
    pub created_at: DateTime<Utc>,
    pub champion_since: DateTime<Utc>,
    pub test_roc_auc: Option<f64>,
    pub live: Option<LiveMetric>,
}

/// The overview page.
#[derive(Debug, Clone)]
pub struct Overview {
    pub champion: Option<Champion>,
    /// Customers the generate job wrote, per minute of the last hour (from its run records).
    pub per_minute: Vec<(DateTime<Utc>, i64)>,
    pub newest_customer: Option<DateTime<Utc>>,
    pub drift: Option<DriftVerdict>,
    pub latest_runs: Vec<RunLine>,
}

/// The newest `limit` runs, of one job or of all.
pub async fn recent_runs(
    pool: &PgPool,
    job: Option<&str>,
    limit: i64,
) -> Result<Vec<RunLine>, Error> {
    Ok(match job {
        Some(job) => churn_store::ops::list_runs(pool, job, None, limit, 0).await?,
        None => churn_store::ops::recent_runs(pool, limit).await?,
    })
}

/// The champion of `model_name`, if any, with its newest live ROC AUC.
pub async fn champion(pool: &PgPool, model_name: &str) -> Result<Option<Champion>, Error> {
    let Some(served) = registry::champion_version(pool, model_name).await? else {
        return Ok(None);
    };
    let live = live_metrics(pool, model_name)
        .await?
        .into_iter()
        .find(|m| m.model_version == served.version);
    Ok(Some(Champion {
        version: served.version,
        family: served.family,
        created_at: served.created_at,
        champion_since: served.champion_since,
        test_roc_auc: VersionMetrics::from_json(&served.metrics).test_roc_auc,
        live,
    }))
}

/// The newest live metrics row of every version of `model_name`.
pub async fn live_metrics(pool: &PgPool, model_name: &str) -> Result<Vec<LiveMetric>, Error> {
    Ok(store::live_metrics(pool, model_name).await?)
}

/// The newest drift run, if any.
pub async fn newest_drift(pool: &PgPool) -> Result<Option<DriftVerdict>, Error> {
    Ok(store::drift_verdicts(pool, 1).await?.into_iter().next())
}

/// Everything on the overview page.
pub async fn overview(pool: &PgPool, model_name: &str) -> Result<Overview, Error> {
    let per_minute = store::generated_per_minute(pool)
        .await?
        .into_iter()
        .map(|m| (m.minute, m.customers))
        .collect();
    let newest_customer = store::newest_customer(pool).await?;
    Ok(Overview {
        champion: champion(pool, model_name).await?,
        per_minute,
        newest_customer,
        drift: newest_drift(pool).await?,
        latest_runs: churn_store::ops::latest_runs(pool).await?,
    })
}

/// One registered version with everything the models page shows: the registry's line and its newest
/// live metrics.
#[derive(Debug, Clone)]
pub struct VersionCard {
    pub line: registry::VersionLine,
    pub live: Option<LiveMetric>,
}

impl VersionCard {
    /// The metrics stored with the version, typed.
    pub fn stored_metrics(&self) -> VersionMetrics {
        VersionMetrics::from_json(&self.line.metrics)
    }

    /// Feature importance as stored at training (field, drop in ROC AUC), largest first.
    pub fn importance(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .stored_metrics()
            .feature_importance
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.field, i.importance))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }
}

/// The minutes of logged traffic the models page sums up as "live".
pub const TRAFFIC_WINDOW_MINUTES: i32 = 60;

/// Real traffic per version and source: what was served in the last window and the newest matured and
/// provisional cohorts.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    pub served: Vec<ServedWindow>,
    pub cohorts: Vec<CohortFigure>,
}

/// One line of the models page's live-and-matured table: a version and a source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceLine<'a> {
    pub version: i32,
    pub source: &'a str,
    /// The arms that served (or shadow-scored) in the window.
    pub served: Vec<&'a ServedWindow>,
    pub matured: Option<&'a CohortFigure>,
    pub provisional: Option<&'a CohortFigure>,
}

impl Traffic {
    /// One line per version and source that has served traffic or cohort figures, newest version first.
    pub fn lines(&self) -> Vec<SourceLine<'_>> {
        let mut keys: Vec<(i32, &str)> = self
            .served
            .iter()
            .map(|s| (s.model_version, s.source.as_str()))
            .chain(
                self.cohorts
                    .iter()
                    .map(|c| (c.model_version, c.source.as_str())),
            )
            .collect();
        keys.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        keys.dedup();
        keys.into_iter()
            .map(|(version, source)| {
                let cohort = |provisional: bool| {
                    self.cohorts.iter().find(|c| {
                        c.model_version == version
                            && c.source == source
                            && c.provisional == provisional
                    })
                };
                SourceLine {
                    version,
                    source,
                    served: self
                        .served
                        .iter()
                        .filter(|s| s.model_version == version && s.source == source)
                        .collect(),
                    matured: cohort(false),
                    provisional: cohort(true),
                }
            })
            .collect()
    }
}

/// Every version of `model_name`, newest first, the newest decisions and the real traffic.
pub async fn models(
    pool: &PgPool,
    model_name: &str,
) -> Result<(Vec<VersionCard>, Vec<Decision>, Traffic), Error> {
    let live = live_metrics(pool, model_name).await?;
    let cards = registry::version_lines(pool, model_name, 200)
        .await?
        .into_iter()
        .map(|line| VersionCard {
            live: live
                .iter()
                .find(|m| m.model_version == line.version)
                .cloned(),
            line,
        })
        .collect();
    let decisions = registry::decision_lines(pool, model_name, 50).await?;
    let traffic = Traffic {
        served: churn_store::traffic_overview::served_in_window(
            pool,
            model_name,
            TRAFFIC_WINDOW_MINUTES,
        )
        .await?,
        cohorts: churn_store::traffic_overview::newest_cohorts(pool, model_name).await?,
    };
    Ok((cards, decisions, traffic))
}

/// An experiment run with its parameters and final metrics.
#[derive(Debug, Clone)]
pub struct RunCard {
    pub run_id: Uuid,
    pub experiment: String,
    pub status: churn_registry::RunStatus,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub training_rows: Option<i64>,
    pub code_version: String,
    pub params: Vec<(String, String)>,
    pub metrics: Vec<(String, f64)>,
}

/// The key under which each AutoML trial's cross-validated ROC AUC is logged (step = trial number).
pub const TRIAL_METRIC: &str = "trial_cv_roc_auc";

/// The newest experiment runs, and the AutoML leaderboard (trial, CV ROC AUC; best first) of `selected`
/// or else of the newest run.
pub async fn runs(
    pool: &PgPool,
    selected: Option<Uuid>,
) -> Result<(Vec<RunCard>, Option<Uuid>, Vec<(i64, f64)>), Error> {
    let rows = registry::experiment_runs(pool, 50).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.run_id).collect();
    let params = registry::params_of_runs(pool, &ids).await?;
    let metrics = registry::final_metrics_of_runs(pool, &ids, TRIAL_METRIC).await?;
    let cards: Vec<RunCard> = rows
        .into_iter()
        .map(|r| RunCard {
            params: params
                .iter()
                .filter(|p| p.run_id == r.run_id)
                .map(|p| (p.key.clone(), p.value.clone()))
                .collect(),
            metrics: metrics
                .iter()
                .filter(|m| m.run_id == r.run_id)
                .map(|m| (m.key.clone(), m.value))
                .collect(),
            run_id: r.run_id,
            experiment: r.experiment,
            status: r.status,
            started_at: r.started_at,
            ended_at: r.ended_at,
            training_rows: r.training_rows,
            code_version: r.code_version,
        })
        .collect();
    let board_run = selected.or_else(|| cards.first().map(|c| c.run_id));
    let board = match board_run {
        Some(run) => registry::best_steps(pool, run, TRIAL_METRIC, 25)
            .await?
            .into_iter()
            .map(|s| (s.step, s.value))
            .collect(),
        None => Vec::new(),
    };
    Ok((cards, board_run, board))
}

/// The drift page: the newest runs (oldest first) and their per-column results.
#[derive(Debug, Clone)]
pub struct DriftHistory {
    pub runs: Vec<DriftVerdict>,
    pub cells: Vec<DriftCell>,
}

/// The newest `limit` drift runs with their columns.
pub async fn drift(pool: &PgPool, limit: i64) -> Result<DriftHistory, Error> {
    let mut runs = store::drift_verdicts(pool, limit).await?;
    runs.reverse();
    let ids: Vec<Uuid> = runs.iter().map(|r| r.run_id).collect();
    let cells = store::drift_cells(pool, &ids).await?;
    Ok(DriftHistory { runs, cells })
}

/// The data page: the newest landed files and the reasons records were refused.
pub async fn data(pool: &PgPool) -> Result<(Vec<FileLine>, Vec<RejectionCount>), Error> {
    let files = store::recent_files(pool).await?;
    let reasons = store::rejection_counts(pool).await?;
    Ok((files, reasons))
}
