//! The console's reads of real traffic: what each version served per source in the last window (the
//! inference log) and its newest matured and provisional cohort figures (the metrics job's cohorts).
//! Both read an indexed range: an hour of one model's log, one model's day cohorts.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::Error;

/// What one version served for one source (`api` or `batch`) in the last window, from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedWindow {
    pub model_version: i32,
    pub source: String,
    /// champion, canary or shadow (shadow scores are logged but not served).
    pub arm: String,
    pub predictions: i64,
    pub mean_probability: Option<f64>,
    pub p95_latency_ms: Option<f64>,
}

/// Per version, source and arm: the predictions logged in the last `minutes`.
pub async fn served_in_window(
    pool: &PgPool,
    model_name: &str,
    minutes: i32,
) -> Result<Vec<ServedWindow>, Error> {
    Ok(sqlx::query_as!(
        ServedWindow,
        r#"select model_version, source, arm, count(*) as "predictions!",
                  avg(probability) as mean_probability,
                  (percentile_cont(0.95) within group (order by latency_us) / 1000.0)::float8 as p95_latency_ms
           from serving.inference_log
           where model_name = $1 and predicted_at >= now() - make_interval(mins => $2)
           group by model_version, source, arm
           order by model_version desc, source, arm"#,
        model_name,
        minutes,
    )
    .fetch_all(pool)
    .await?)
}

/// A version's newest day cohort for one source, matured or provisional (the whole cohort, no slice).
#[derive(Debug, Clone, PartialEq)]
pub struct CohortFigure {
    pub model_version: i32,
    pub source: String,
    pub provisional: bool,
    pub cohort_start: NaiveDate,
    pub n_predictions: i32,
    pub n_labelled: i32,
    pub label_coverage: f64,
    pub roc_auc: Option<f64>,
    pub matures_at: DateTime<Utc>,
}

/// Per version and source, the newest matured and the newest provisional day cohort.
pub async fn newest_cohorts(pool: &PgPool, model_name: &str) -> Result<Vec<CohortFigure>, Error> {
    Ok(sqlx::query_as!(
        CohortFigure,
        "select distinct on (model_version, source, provisional)
                model_version, source, provisional, cohort_start, n_predictions, n_labelled,
                label_coverage, roc_auc, matures_at
         from monitoring.cohort_metrics
         where model_name = $1 and cohort = 'day' and slice = 'all'
         order by model_version desc, source, provisional, cohort_start desc",
        model_name,
    )
    .fetch_all(pool)
    .await?)
}
