//! Cohort metrics' rows: the predictions of every source with the outcome that judges each one (read by
//! binary COPY), the cohorts already final, and the upsert of `monitoring.cohort_metrics`.
//!
//! Which outcome judges a logged prediction (`serving.inference_log`): every observation in
//! `serving.outcomes` is kept, and of those that apply the latest wins (by `observed_at`, ties by
//! `outcome_id`, so a row fed later wins a tie). An outcome applies to a prediction when
//! - it names the prediction's request and its item, or its request without an item (every item), at
//!   any observation time: the caller tied it to that answer; or
//! - it names the caller's `customer_id` of the prediction and was observed at or after the prediction:
//!   an outcome observed before a prediction was made describes the customer's past, not what the
//!   prediction foresaw, so it judges only predictions made before it.
//!
//! The warehouse's predictions (`churn.classified`) are judged by their customer's label
//! (`actual_churn_label`), whose source is the customer's (`synthetic` or `ingested`).

use chrono::{DateTime, NaiveDate, Utc};
use churn_core::VersionNumber;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use super::copy::{PG_EPOCH_MICROS, copy_error, copy_out_binary, fixed};
use crate::Error;

/// Where a prediction came from, as `monitoring.cohort_metrics.source` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PredictionSource {
    /// A single `POST /predict` (or explain) call, logged.
    Api,
    /// A batch or stream call, logged.
    Batch,
    /// The generate loop's synthetic customers.
    Synthetic,
    /// Customers ingested from files and scored.
    Ingested,
}

impl PredictionSource {
    pub const ALL: [PredictionSource; 4] = [
        PredictionSource::Api,
        PredictionSource::Batch,
        PredictionSource::Synthetic,
        PredictionSource::Ingested,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PredictionSource::Api => "api",
            PredictionSource::Batch => "batch",
            PredictionSource::Synthetic => "synthetic",
            PredictionSource::Ingested => "ingested",
        }
    }
}

/// The slice columns, in the order of [`ScoredRows::slices`].
pub const SLICE_COLUMNS: [&str; 3] = ["contract", "internet_service", "senior_citizen"];

/// One model version's predictions from one source, column by column; each slice column's values are
/// indexes into its list of distinct values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoredRows {
    /// When each prediction was made, in microseconds since the Unix epoch.
    pub predicted_at: Vec<i64>,
    pub probabilities: Vec<f64>,
    pub labels: Vec<Option<bool>>,
    /// Per [`SLICE_COLUMNS`] entry: (each row's code, the distinct values).
    pub slices: [(Vec<u16>, Vec<String>); 3],
}

impl ScoredRows {
    fn push(
        &mut self,
        at: i64,
        p: f64,
        label: Option<bool>,
        slices: [&[u8]; 3],
    ) -> Result<(), Error> {
        self.predicted_at.push(at);
        self.probabilities.push(p);
        self.labels.push(label);
        for ((codes, values), raw) in self.slices.iter_mut().zip(slices) {
            let code = match values.iter().position(|v| v.as_bytes() == raw) {
                Some(code) => code,
                None => {
                    let value = std::str::from_utf8(raw)
                        .map_err(|_| copy_error("a slice value is not UTF-8"))?;
                    values.push(value.to_owned());
                    values.len() - 1
                }
            };
            codes.push(u16::try_from(code).map_err(|_| copy_error("too many slice values"))?);
        }
        Ok(())
    }
}

/// Rows by (model version, source), in first-seen order.
pub type ScoredBySource = Vec<((VersionNumber, PredictionSource), ScoredRows)>;

fn entry(
    out: &mut ScoredBySource,
    version: VersionNumber,
    source: PredictionSource,
) -> &mut ScoredRows {
    let at = match out.iter().position(|(k, _)| *k == (version, source)) {
        Some(at) => at,
        None => {
            out.push(((version, source), ScoredRows::default()));
            out.len() - 1
        }
    };
    &mut out[at].1
}

/// Decodes the rows of both COPY statements below: version, a source flag, time, probability,
/// label (nullable), contract, internet service, senior citizen.
fn decode(
    out: &mut ScoredBySource,
    fields: &[Option<&[u8]>],
    flagged: PredictionSource,
    other: PredictionSource,
) -> Result<(), Error> {
    let [
        Some(version),
        Some(flag),
        Some(at),
        Some(p),
        label,
        Some(contract),
        Some(internet),
        Some(senior),
    ] = fields
    else {
        return Err(copy_error("expected eight fields, only the label nullable"));
    };
    let version = VersionNumber::new(i32::from_be_bytes(fixed(version)?))
        .map_err(|_| copy_error("a model version below 1"))?;
    let source = if fixed::<1>(flag)?[0] != 0 {
        flagged
    } else {
        other
    };
    let label = label
        .map(|l| fixed::<1>(l).map(|b| b[0] != 0))
        .transpose()?;
    let senior: &[u8] = if fixed::<1>(senior)?[0] != 0 {
        b"true"
    } else {
        b"false"
    };
    entry(out, version, source).push(
        i64::from_be_bytes(fixed(at)?) + PG_EPOCH_MICROS,
        f64::from_be_bytes(fixed(p)?),
        label,
        [contract, internet, senior],
    )
}

/// The logged predictions (`api`, `batch`) of `model_name` made at or after `since`, each with the
/// outcome that judges it by the rules of this module's documentation.
pub async fn logged_predictions(
    pool: &PgPool,
    model_name: &str,
    since: DateTime<Utc>,
) -> Result<ScoredBySource, Error> {
    let mut conn = pool.acquire().await?;
    // COPY takes no parameters: the server quotes the values into the statement (format's %L).
    // The latest outcome per customer and per request item comes straight off the outcomes' indexes;
    // a customer's latest observed before the prediction means none after it, so it judges nothing.
    let statement = sqlx::query_scalar!(
        r#"select format(
               'copy (
                  with by_customer as (
                      select distinct on (customer_id) customer_id, churned, observed_at, outcome_id
                      from serving.outcomes where customer_id is not null
                      order by customer_id, observed_at desc, outcome_id desc),
                  by_request as (
                      select distinct on (request_id, item) request_id, item, churned, observed_at,
                             outcome_id
                      from serving.outcomes where request_id is not null
                      order by request_id, item, observed_at desc, outcome_id desc)
                  select l.model_version, l.source = %L, l.predicted_at, l.probability,
                         case when c.observed_at is not null
                                   and (i.observed_at is null
                                        or (c.observed_at, c.outcome_id) > (i.observed_at, i.outcome_id))
                                   and (r.observed_at is null
                                        or (c.observed_at, c.outcome_id) > (r.observed_at, r.outcome_id))
                                   then c.churned
                              when i.observed_at is not null
                                   and (r.observed_at is null
                                        or (i.observed_at, i.outcome_id) > (r.observed_at, r.outcome_id))
                                   then i.churned
                              else r.churned end,
                         l.contract, l.internet_service, l.senior_citizen
                  from serving.inference_log l
                  left join by_customer c on c.customer_id = l.customer_id
                       and c.observed_at >= l.predicted_at
                  left join by_request i on i.request_id = l.request_id and i.item = l.item
                  left join by_request r on r.request_id = l.request_id and r.item is null
                  where l.model_name = %L and l.predicted_at >= %L::timestamptz
                    and l.source in (''api'', ''batch''))
                to stdout (format binary)',
               'api', $1::text, $2::timestamptz) as "statement!""#,
        model_name,
        since,
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut out = ScoredBySource::new();
    copy_out_binary(&mut conn, &statement, |fields| {
        decode(
            &mut out,
            fields,
            PredictionSource::Api,
            PredictionSource::Batch,
        )
    })
    .await?;
    Ok(out)
}

/// The warehouse's predictions of `model_name` for synthetic and ingested customers made at or after
/// `since`, with their customers' labels.
pub async fn classified_predictions(
    pool: &PgPool,
    model_name: &str,
    since: DateTime<Utc>,
) -> Result<ScoredBySource, Error> {
    let mut conn = pool.acquire().await?;
    let statement = sqlx::query_scalar!(
        r#"select format(
               'copy (select k.model_version, c.source = %L, k.classified_at, k.churn_probability,
                             k.actual_churn_label, c.contract, c.internet_service, c.senior_citizen
                      from churn.classified k join churn.customers c on c.customer_id = k.customer_id
                      where k.model_name = %L and k.classified_at >= %L::timestamptz
                        and c.source in (%L, %L))
                to stdout (format binary)',
               'synthetic', $1::text, $2::timestamptz, 'synthetic', 'ingested') as "statement!""#,
        model_name,
        since,
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut out = ScoredBySource::new();
    copy_out_binary(&mut conn, &statement, |fields| {
        decode(
            &mut out,
            fields,
            PredictionSource::Synthetic,
            PredictionSource::Ingested,
        )
    })
    .await?;
    Ok(out)
}

/// The start of the newest week cohort of `model_name` stored final (not provisional), if any: every
/// cohort up to its end is final, so a run reads only predictions made after it.
pub async fn final_frontier(pool: &PgPool, model_name: &str) -> Result<Option<NaiveDate>, Error> {
    Ok(sqlx::query_scalar!(
        "select max(cohort_start) from monitoring.cohort_metrics
         where model_name = $1 and cohort = 'week' and slice = 'all' and not provisional",
        model_name,
    )
    .fetch_one(pool)
    .await?)
}

/// One row of `monitoring.cohort_metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortMetric {
    pub model_name: String,
    pub model_version: VersionNumber,
    pub source: PredictionSource,
    /// `day` or `week`.
    pub cohort: &'static str,
    pub cohort_start: NaiveDate,
    pub slice: &'static str,
    pub slice_value: String,
    pub n_predictions: i64,
    pub n_labelled: i64,
    pub n_positive: i64,
    pub label_coverage: f64,
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub log_loss: Option<f64>,
    pub brier: Option<f64>,
    pub ece: Option<f64>,
    /// `[{lower, upper, n, mean_predicted, observed_rate}]`.
    pub calibration: Value,
    pub provisional: bool,
    pub matures_at: DateTime<Utc>,
}

/// Upserts cohort rows on the table's key, in one statement; a row already stored final is left as it
/// is (a final cohort is never recomputed). Returns how many rows were written.
pub async fn upsert_cohort_metrics(
    pool: &PgPool,
    job_run_id: Option<Uuid>,
    rows: &[CohortMetric],
) -> Result<u64, Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let count = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
    let col = |f: fn(&CohortMetric) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
    Ok(sqlx::query!(
        "insert into monitoring.cohort_metrics (job_run_id, model_name, model_version, source, cohort,
             cohort_start, slice, slice_value, n_predictions, n_labelled, n_positive, label_coverage,
             roc_auc, pr_auc, log_loss, brier, ece, calibration, provisional, matures_at)
         select $1, * from unnest($2::text[], $3::int4[], $4::text[], $5::text[], $6::date[], $7::text[],
             $8::text[], $9::int4[], $10::int4[], $11::int4[], $12::float8[], $13::float8[],
             $14::float8[], $15::float8[], $16::float8[], $17::float8[], $18::jsonb[], $19::bool[],
             $20::timestamptz[])
         on conflict on constraint cohort_metrics_key do update set
             job_run_id = excluded.job_run_id, n_predictions = excluded.n_predictions,
             n_labelled = excluded.n_labelled, n_positive = excluded.n_positive,
             label_coverage = excluded.label_coverage, roc_auc = excluded.roc_auc,
             pr_auc = excluded.pr_auc, log_loss = excluded.log_loss, brier = excluded.brier,
             ece = excluded.ece, calibration = excluded.calibration,
             provisional = excluded.provisional, matures_at = excluded.matures_at, computed_at = now()
         where cohort_metrics.provisional",
        job_run_id,
        &rows.iter().map(|r| r.model_name.clone()).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.model_version.get()).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.source.as_str()).collect::<Vec<_>>() as &[&str],
        &rows.iter().map(|r| r.cohort).collect::<Vec<_>>() as &[&str],
        &rows.iter().map(|r| r.cohort_start).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.slice).collect::<Vec<_>>() as &[&str],
        &rows.iter().map(|r| r.slice_value.clone()).collect::<Vec<_>>(),
        &rows.iter().map(|r| count(r.n_predictions)).collect::<Vec<_>>(),
        &rows.iter().map(|r| count(r.n_labelled)).collect::<Vec<_>>(),
        &rows.iter().map(|r| count(r.n_positive)).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.label_coverage).collect::<Vec<_>>(),
        &col(|r| r.roc_auc) as &[Option<f64>],
        &col(|r| r.pr_auc) as &[Option<f64>],
        &col(|r| r.log_loss) as &[Option<f64>],
        &col(|r| r.brier) as &[Option<f64>],
        &col(|r| r.ece) as &[Option<f64>],
        &rows.iter().map(|r| Json(r.calibration.clone())).collect::<Vec<_>>() as &[Json<Value>],
        &rows.iter().map(|r| r.provisional).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.matures_at).collect::<Vec<_>>(),
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// A cohort's ROC AUC as a retrain trigger reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortAuc {
    pub cohort_metric_id: i64,
    pub cohort: String,
    pub cohort_start: NaiveDate,
    pub roc_auc: f64,
    pub n_labelled: i32,
    pub provisional: bool,
}

/// The ROC AUC of every `cohort` (`day`/`week`) of one version and source, whole (slice `all`), with at
/// least `min_labelled` labelled predictions, oldest cohort first.
pub async fn cohort_aucs(
    pool: &PgPool,
    model_name: &str,
    version: VersionNumber,
    source: PredictionSource,
    cohort: &str,
    min_labelled: i64,
) -> Result<Vec<CohortAuc>, Error> {
    Ok(sqlx::query_as!(
        CohortAuc,
        r#"select cohort_metric_id, cohort, cohort_start, roc_auc as "roc_auc!", n_labelled, provisional
           from monitoring.cohort_metrics
           where model_name = $1 and model_version = $2 and source = $3 and cohort = $4
             and slice = 'all' and n_labelled >= $5::int8 and roc_auc is not null
           order by cohort_start"#,
        model_name,
        version.get(),
        source.as_str(),
        cohort,
        min_labelled,
    )
    .fetch_all(pool)
    .await?)
}
