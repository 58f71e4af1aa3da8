//! Monitoring reads and writes: labelled predictions per model version and window, the customers of a
//! window, live metrics with their calibration bins, drift runs, and the retrain triggers with their
//! cooldown. The metrics and drift themselves are computed elsewhere; this module only moves rows.

use chrono::{DateTime, Utc};
use churn_core::{
    AddOn, Category, Contract, Customer, Gender, InternetService, MultipleLines, PaymentMethod,
    YesNo,
};
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::Error;
use crate::warehouse::Source;

/// A named time window `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// e.g. `1h`, `1d`.
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Big joins of a window's predictions with their labels: enough memory for one in-memory hash, no
/// JIT (whose compile time exceeds these queries' run time), parallel workers allowed.
const ANALYTIC_SETTINGS: &str =
    "set local work_mem = '256MB'; set local jit = off; set local parallel_setup_cost = 100";

/// The versions of `model_name` that scored at least one customer in the window, oldest first.
pub async fn versions_scored(
    pool: &PgPool,
    model_name: &str,
    window: &Window,
) -> Result<Vec<i32>, Error> {
    // One index probe per version (they are few) instead of a scan of the window's predictions.
    Ok(sqlx::query_scalar(
        "select v.version from registry.model_versions v
         where v.model_name = $1 and exists (
             select 1 from churn.classified k
             where k.model_name = v.model_name and k.model_version = v.version
               and k.classified_at >= $2 and k.classified_at < $3)
         order by v.version",
    )
    .bind(model_name)
    .bind(window.start)
    .bind(window.end)
    .fetch_all(pool)
    .await?)
}

/// One version's predictions in a window for customers whose actual label is known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelledPredictions {
    pub labels: Vec<bool>,
    pub probabilities: Vec<f64>,
    /// When each prediction was made, in microseconds since the Unix epoch.
    pub classified_at: Vec<i64>,
    /// The decision threshold the version used (the same on all its rows); `None` without rows.
    pub threshold: Option<f64>,
}

impl LabelledPredictions {
    /// The predictions made at or after `start`: a shorter window ending where this one ends, without
    /// reading the rows again.
    pub fn since(&self, start: DateTime<Utc>) -> LabelledPredictions {
        let start = start.timestamp_micros();
        let mut out = LabelledPredictions {
            threshold: self.threshold,
            ..LabelledPredictions::default()
        };
        for ((&at, &label), &p) in self
            .classified_at
            .iter()
            .zip(&self.labels)
            .zip(&self.probabilities)
        {
            if at >= start {
                out.classified_at.push(at);
                out.labels.push(label);
                out.probabilities.push(p);
            }
        }
        if out.labels.is_empty() {
            out.threshold = None;
        }
        out
    }
}

/// The labelled predictions of one model version in a window.
///
/// A million rows must arrive well inside the metrics job's one-second budget, so they come from one
/// table (the label is kept on each prediction, migration V7) through its covering index, as binary
/// COPY: decoding rows one by one through the query protocol cost more than the whole budget.
pub async fn labelled_predictions(
    pool: &PgPool,
    model_name: &str,
    version: i32,
    window: &Window,
) -> Result<LabelledPredictions, Error> {
    let mut conn = pool.acquire().await?;
    // COPY takes no parameters: the values are written as literals (text quoted, numbers and times
    // formatted by us), never as SQL from elsewhere.
    let statement = format!(
        "copy (select classified_at, actual_churn_label, churn_probability from churn.classified
               where model_name = {} and model_version = {version}
                 and classified_at >= {} and classified_at < {} and actual_churn_label is not null)
         to stdout (format binary)",
        text_literal(model_name),
        time_literal(window.start),
        time_literal(window.end),
    );
    let mut out = LabelledPredictions::default();
    copy_out_binary(&mut conn, &statement, |fields| {
        let [Some(at), Some(label), Some(p)] = fields else {
            return Err(copy_error("expected three non-null fields"));
        };
        out.classified_at
            .push(i64::from_be_bytes(fixed(at)?) + PG_EPOCH_MICROS);
        out.labels.push(fixed::<1>(label)?[0] != 0);
        out.probabilities.push(f64::from_be_bytes(fixed(p)?));
        Ok(())
    })
    .await?;
    out.threshold = sqlx::query_scalar(
        "select threshold from churn.classified
         where model_name = $1 and model_version = $2 and classified_at >= $3 and classified_at < $4
         limit 1",
    )
    .bind(model_name)
    .bind(version)
    .bind(window.start)
    .bind(window.end)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(out)
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01), the origin of binary timestamps.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

fn text_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn time_literal(at: DateTime<Utc>) -> String {
    format!(
        "'{}'::timestamptz",
        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    )
}

fn copy_error(reason: &str) -> Error {
    Error::Database(sqlx::Error::Protocol(format!(
        "unexpected binary COPY data: {reason}"
    )))
}

fn fixed<const N: usize>(field: &[u8]) -> Result<[u8; N], Error> {
    field
        .try_into()
        .map_err(|_| copy_error("a field has the wrong width"))
}

/// Runs `COPY (…) TO STDOUT (FORMAT binary)` and hands each tuple's fields (`None` for NULL) to `row`,
/// decoding as the data streams in so memory holds one network chunk, not the result.
async fn copy_out_binary(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    mut row: impl FnMut(&[Option<&[u8]>]) -> Result<(), Error>,
) -> Result<(), Error> {
    const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
    let mut stream = conn.copy_out_raw(statement).await?;
    let mut buf: Vec<u8> = Vec::new();
    let mut header_done = false;
    let mut finished = false;
    while let Some(chunk) = stream.try_next().await? {
        buf.extend_from_slice(&chunk);
        let mut fields: Vec<Option<&[u8]>> = Vec::new();
        let mut pos = 0;
        if !header_done {
            // Signature, flags, then a header extension of the length that follows.
            if buf.len() < SIGNATURE.len() + 8 {
                continue;
            }
            if !buf.starts_with(SIGNATURE) {
                return Err(copy_error("no PGCOPY signature"));
            }
            let ext = u32::from_be_bytes(fixed(&buf[15..19])?) as usize;
            if buf.len() < 19 + ext {
                continue;
            }
            pos = 19 + ext;
            header_done = true;
        }
        loop {
            let rest = &buf[pos..];
            if rest.len() < 2 {
                break;
            }
            let count = i16::from_be_bytes([rest[0], rest[1]]);
            if count == -1 {
                finished = true;
                pos = buf.len();
                break;
            }
            let mut at = 2;
            let mut complete = true;
            fields.clear();
            for _ in 0..count.max(0) {
                if rest.len() < at + 4 {
                    complete = false;
                    break;
                }
                let len = i32::from_be_bytes(fixed(&rest[at..at + 4])?);
                at += 4;
                if len < 0 {
                    fields.push(None);
                    continue;
                }
                let len = len as usize;
                if rest.len() < at + len {
                    complete = false;
                    break;
                }
                fields.push(Some(&rest[at..at + len]));
                at += len;
            }
            if !complete {
                break;
            }
            row(&fields)?;
            pos += at;
        }
        drop(fields);
        buf.drain(..pos);
    }
    if !finished {
        return Err(copy_error("the stream ended before its trailer"));
    }
    Ok(())
}

/// Two versions' predictions for the same labelled customers (the champion's and its shadow's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairedPredictions {
    pub labels: Vec<bool>,
    pub first: Vec<f64>,
    pub second: Vec<f64>,
}

/// The labelled customers of a window that both `first` and `second` scored, with both probabilities.
pub async fn paired_predictions(
    pool: &PgPool,
    model_name: &str,
    first: i32,
    second: i32,
    window: &Window,
) -> Result<PairedPredictions, Error> {
    let mut tx = pool.begin().await?;
    sqlx::raw_sql(ANALYTIC_SETTINGS).execute(&mut *tx).await?;
    let mut out = PairedPredictions::default();
    {
        let mut rows = sqlx::query_as::<_, (bool, f64, f64)>(
            "select a.actual_churn_label, a.churn_probability, b.churn_probability
             from churn.classified a
             join churn.classified b on b.customer_id = a.customer_id
                  and b.model_name = a.model_name and b.model_version = $3
             where a.model_name = $1 and a.model_version = $2
               and a.classified_at >= $4 and a.classified_at < $5
               and a.actual_churn_label is not null",
        )
        .bind(model_name)
        .bind(first)
        .bind(second)
        .bind(window.start)
        .bind(window.end)
        .fetch(&mut *tx);
        while let Some((label, a, b)) = rows.try_next().await? {
            out.labels.push(label);
            out.first.push(a);
            out.second.push(b);
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// One version's churn probabilities in a window (labelled or not): the current side of prediction drift.
pub async fn probabilities(
    pool: &PgPool,
    model_name: &str,
    version: i32,
    window: &Window,
) -> Result<Vec<f64>, Error> {
    Ok(sqlx::query_scalar(
        "select churn_probability from churn.classified
         where model_name = $1 and model_version = $2 and classified_at >= $3 and classified_at < $4",
    )
    .bind(model_name)
    .bind(version)
    .bind(window.start)
    .bind(window.end)
    .fetch_all(pool)
    .await?)
}

const CUSTOMER_SELECT: &str = "select country, state, city, zip_code, latitude, longitude, gender, \
    senior_citizen, partner, dependents, tenure_months, phone_service, multiple_lines, internet_service, \
    online_security, online_backup, device_protection, tech_support, streaming_tv, streaming_movies, \
    contract, paperless_billing, payment_method, monthly_charges::float8, total_charges::float8, \
    churn_label from churn.customers";

fn category<T: Category>(row: &sqlx::postgres::PgRow, index: usize) -> Result<T, Error> {
    let raw: &str = row.try_get(index)?;
    T::parse(raw).ok_or_else(|| {
        Error::Database(sqlx::Error::Decode(
            format!(
                "churn.customers column {index} holds {raw:?}, which {}",
                T::allowed()
            )
            .into(),
        ))
    })
}

fn yes_no(row: &sqlx::postgres::PgRow, index: usize) -> Result<YesNo, Error> {
    Ok(YesNo::from_bool(row.try_get(index)?))
}

fn customer(row: &sqlx::postgres::PgRow) -> Result<Customer, Error> {
    let tenure: i16 = row.try_get(10)?;
    Ok(Customer {
        country: row.try_get(0)?,
        state: row.try_get(1)?,
        city: row.try_get(2)?,
        zip_code: row.try_get(3)?,
        latitude: row.try_get(4)?,
        longitude: row.try_get(5)?,
        gender: category::<Gender>(row, 6)?,
        senior_citizen: yes_no(row, 7)?,
        partner: yes_no(row, 8)?,
        dependents: yes_no(row, 9)?,
        tenure_months: u32::try_from(tenure).unwrap_or(0),
        phone_service: yes_no(row, 11)?,
        multiple_lines: category::<MultipleLines>(row, 12)?,
        internet_service: category::<InternetService>(row, 13)?,
        online_security: category::<AddOn>(row, 14)?,
        online_backup: category::<AddOn>(row, 15)?,
        device_protection: category::<AddOn>(row, 16)?,
        tech_support: category::<AddOn>(row, 17)?,
        streaming_tv: category::<AddOn>(row, 18)?,
        streaming_movies: category::<AddOn>(row, 19)?,
        contract: category::<Contract>(row, 20)?,
        paperless_billing: yes_no(row, 21)?,
        payment_method: category::<PaymentMethod>(row, 22)?,
        monthly_charges: row.try_get(23)?,
        total_charges: row.try_get(24)?,
        churn_label: row.try_get::<Option<bool>, _>(25)?.map(YesNo::from_bool),
    })
}

/// The customers written in a window (every source): the newest `limit` of them.
pub async fn customers_in(
    pool: &PgPool,
    window: &Window,
    limit: i64,
) -> Result<Vec<Customer>, Error> {
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{CUSTOMER_SELECT} where inserted_at >= $1 and inserted_at < $2
         order by inserted_at desc limit $3"
    )))
    .bind(window.start)
    .bind(window.end)
    .bind(limit)
    .fetch(pool);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        out.push(customer(&row)?);
    }
    Ok(out)
}

/// Labelled customers of the given sources for training: those labelled at or after `since` when given,
/// the newest `limit` of them.
pub async fn labelled_customers(
    pool: &PgPool,
    source: Source,
    since: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Customer>, Error> {
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{CUSTOMER_SELECT} where source = $1 and churn_label is not null
           and ($2::timestamptz is null or coalesce(labelled_at, inserted_at) >= $2)
         order by customer_id desc limit $3"
    )))
    .bind(source.as_str())
    .bind(since)
    .bind(limit)
    .fetch(pool);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        out.push(customer(&row)?);
    }
    Ok(out)
}

/// Classification metrics of one version on one window, with its calibration bins.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveMetrics {
    pub model_name: String,
    pub model_version: i32,
    pub window: Window,
    pub job_run_id: Option<Uuid>,
    pub n_samples: i64,
    pub n_positive: i64,
    pub threshold: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub log_loss: f64,
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub brier: f64,
    pub ece: Option<f64>,
    pub bins: Vec<CalibrationBin>,
}

/// One probability bin of a calibration table.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationBin {
    pub bin: i32,
    pub lower: f64,
    pub upper: f64,
    pub n_samples: i64,
    pub n_positive: i64,
    pub mean_predicted: Option<f64>,
    pub observed_rate: Option<f64>,
}

/// Stores live metrics (`metric_type = 'scheduled'`) and their bins, all in one transaction; returns
/// the new rows' ids in order.
pub async fn insert_live_metrics(pool: &PgPool, rows: &[LiveMetrics]) -> Result<Vec<i64>, Error> {
    let mut tx = pool.begin().await?;
    let mut ids = Vec::with_capacity(rows.len());
    for m in rows {
        let id: i64 = sqlx::query_scalar(
            "insert into monitoring.model_metrics (model_name, model_version, metric_type, window_start,
                 window_end, window_name, job_run_id, n_samples, n_positive, threshold, accuracy,
                 precision, recall, f1, log_loss, roc_auc, pr_auc, brier, ece)
             values ($1, $2, 'scheduled', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                 $17, $18)
             returning metric_id",
        )
        .bind(&m.model_name)
        .bind(m.model_version)
        .bind(m.window.start)
        .bind(m.window.end)
        .bind(&m.window.name)
        .bind(m.job_run_id)
        .bind(i32::try_from(m.n_samples).unwrap_or(i32::MAX))
        .bind(i32::try_from(m.n_positive).unwrap_or(i32::MAX))
        .bind(m.threshold)
        .bind(m.accuracy)
        .bind(m.precision)
        .bind(m.recall)
        .bind(m.f1)
        .bind(m.log_loss)
        .bind(m.roc_auc)
        .bind(m.pr_auc)
        .bind(m.brier)
        .bind(m.ece)
        .fetch_one(&mut *tx)
        .await?;
        for b in &m.bins {
            sqlx::query(
                "insert into monitoring.calibration (metric_id, bin, lower_bound, upper_bound, n_samples,
                     n_positive, mean_predicted, observed_rate)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(b.bin)
            .bind(b.lower)
            .bind(b.upper)
            .bind(i32::try_from(b.n_samples).unwrap_or(i32::MAX))
            .bind(i32::try_from(b.n_positive).unwrap_or(i32::MAX))
            .bind(b.mean_predicted)
            .bind(b.observed_rate)
            .execute(&mut *tx)
            .await?;
        }
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}

/// A drift run's dataset-level summary (`monitoring.drift_runs`).
#[derive(Debug, Clone, PartialEq)]
pub struct DriftRun {
    pub run_id: Uuid,
    pub job_run_id: Option<Uuid>,
    pub model_name: String,
    pub model_version: i32,
    pub window: Window,
    pub n_reference: i64,
    pub n_current: i64,
    pub n_columns: i32,
    pub n_drifted: i32,
    pub share_drifted: f64,
    pub drift_share: f64,
    pub dataset_drift: bool,
    /// The churn probability's drift: statistic, score and verdict.
    pub prediction: Option<(String, f64, bool)>,
}

/// One column's drift in a run (`monitoring.drift`).
#[derive(Debug, Clone, PartialEq)]
pub struct DriftColumn {
    pub feature: String,
    /// `numerical` or `categorical`.
    pub column_type: String,
    pub statistic: String,
    pub value: f64,
    pub threshold: f64,
    pub drifted: bool,
    pub psi: f64,
    pub n_reference: i64,
    pub n_current: i64,
}

/// Stores a drift run with its columns in one transaction.
pub async fn insert_drift_run(
    pool: &PgPool,
    run: &DriftRun,
    columns: &[DriftColumn],
) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    let (statistic, score, drifted) = match &run.prediction {
        Some((s, v, d)) => (Some(s.as_str()), Some(*v), Some(*d)),
        None => (None, None, None),
    };
    sqlx::query(
        "insert into monitoring.drift_runs (run_id, job_run_id, model_name, model_version, window_start,
             window_end, n_reference, n_current, n_columns, n_drifted, share_drifted, drift_share,
             dataset_drift, prediction_statistic, prediction_score, prediction_drifted)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(run.run_id)
    .bind(run.job_run_id)
    .bind(&run.model_name)
    .bind(run.model_version)
    .bind(run.window.start)
    .bind(run.window.end)
    .bind(i32::try_from(run.n_reference).unwrap_or(i32::MAX))
    .bind(i32::try_from(run.n_current).unwrap_or(i32::MAX))
    .bind(run.n_columns)
    .bind(run.n_drifted)
    .bind(run.share_drifted)
    .bind(run.drift_share)
    .bind(run.dataset_drift)
    .bind(statistic)
    .bind(score)
    .bind(drifted)
    .execute(&mut *tx)
    .await?;
    for c in columns {
        sqlx::query(
            "insert into monitoring.drift (model_name, model_version, feature, statistic, value, threshold,
                 drifted, window_start, window_end, n_samples, run_id, column_type, psi, n_reference)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&run.model_name)
        .bind(run.model_version)
        .bind(&c.feature)
        .bind(&c.statistic)
        .bind(c.value)
        .bind(c.threshold)
        .bind(c.drifted)
        .bind(run.window.start)
        .bind(run.window.end)
        .bind(i32::try_from(c.n_current).unwrap_or(i32::MAX))
        .bind(run.run_id)
        .bind(&c.column_type)
        .bind(c.psi)
        .bind(i32::try_from(c.n_reference).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// When the newest version of `model_name` was registered: "the last training".
pub async fn last_training(
    pool: &PgPool,
    model_name: &str,
) -> Result<Option<DateTime<Utc>>, Error> {
    Ok(sqlx::query_scalar(
        "select max(created_at) from registry.model_versions where model_name = $1",
    )
    .bind(model_name)
    .fetch_one(pool)
    .await?)
}

/// The newest drift run of a version computed after `since`: (run id, dataset drift, share drifted).
pub async fn latest_drift(
    pool: &PgPool,
    model_name: &str,
    version: i32,
    since: DateTime<Utc>,
) -> Result<Option<(Uuid, bool, f64)>, Error> {
    Ok(sqlx::query_as(
        "select run_id, dataset_drift, share_drifted from monitoring.drift_runs
         where model_name = $1 and model_version = $2 and computed_at > $3
         order by computed_at desc limit 1",
    )
    .bind(model_name)
    .bind(version)
    .bind(since)
    .fetch_optional(pool)
    .await?)
}

/// The newest live ROC AUC of a version on the window named `window_name`, computed after `since` on at
/// least `min_samples` rows: (ROC AUC, rows, metric id).
pub async fn latest_live_auc(
    pool: &PgPool,
    model_name: &str,
    version: i32,
    window_name: &str,
    since: DateTime<Utc>,
    min_samples: i64,
) -> Result<Option<(f64, i64, i64)>, Error> {
    Ok(sqlx::query_as(
        "select roc_auc, n_samples::int8, metric_id from monitoring.model_metrics
         where model_name = $1 and model_version = $2 and metric_type = 'scheduled'
           and window_name = $3 and computed_at > $4 and n_samples >= $5 and roc_auc is not null
         order by computed_at desc limit 1",
    )
    .bind(model_name)
    .bind(version)
    .bind(window_name)
    .bind(since)
    .bind(min_samples)
    .fetch_optional(pool)
    .await?)
}

/// Customers of `source` whose label became known after `since`.
pub async fn labelled_since(
    pool: &PgPool,
    source: Source,
    since: DateTime<Utc>,
) -> Result<i64, Error> {
    Ok(sqlx::query_scalar(
        "select count(*) from churn.customers
         where source = $1 and churn_label is not null and labelled_at > $2",
    )
    .bind(source.as_str())
    .bind(since)
    .fetch_one(pool)
    .await?)
}

/// What [`request_retrain`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerOutcome {
    /// A new trigger was stored, waiting for a retrain run to claim it.
    Stored { trigger_id: i64 },
    /// A trigger is already waiting for a run.
    Pending { trigger_id: i64, reason: String },
    /// A triggered retrain happened within the cooldown: nothing stored.
    CoolingDown { last: DateTime<Utc> },
}

/// The reasons that count toward the cooldown (the evidence-driven ones, not cron or a person).
pub const EVIDENCE_REASONS: [&str; 3] = ["dataset_drift", "live_auc_drop", "new_labels"];

/// Stores a retrain trigger unless one is already waiting or a triggered retrain happened within
/// `cooldown`; replicas deciding at once take turns on a lock, so one trigger is stored.
pub async fn request_retrain(
    pool: &PgPool,
    reason: &str,
    evidence: &Value,
    cooldown: std::time::Duration,
) -> Result<TriggerOutcome, Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('ops:retrain_triggers', 0))")
        .execute(&mut *tx)
        .await?;
    let pending: Option<(i64, String)> = sqlx::query_as(
        "select trigger_id, reason from ops.retrain_triggers where job_run_id is null
         order by triggered_at limit 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((trigger_id, reason)) = pending {
        return Ok(TriggerOutcome::Pending { trigger_id, reason });
    }
    let cooldown_secs = cooldown.as_secs_f64();
    let last: Option<DateTime<Utc>> = sqlx::query_scalar(
        "select max(triggered_at) from ops.retrain_triggers
         where reason = any($1) and triggered_at > now() - make_interval(secs => $2)",
    )
    .bind(&EVIDENCE_REASONS[..])
    .bind(cooldown_secs)
    .fetch_one(&mut *tx)
    .await?;
    if let Some(last) = last {
        return Ok(TriggerOutcome::CoolingDown { last });
    }
    let trigger_id: i64 = sqlx::query_scalar(
        "insert into ops.retrain_triggers (reason, evidence) values ($1, $2) returning trigger_id",
    )
    .bind(reason)
    .bind(Json(evidence))
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(TriggerOutcome::Stored { trigger_id })
}

/// A retrain trigger claimed by a run.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RetrainTrigger {
    pub trigger_id: i64,
    pub reason: String,
    pub evidence: Json<Value>,
    pub triggered_at: DateTime<Utc>,
}

/// Claims every waiting trigger for the run `job_run_id`; when none was waiting, records `fallback`
/// (`schedule` or `manual`) as the run's reason. Returns what the run answers to.
pub async fn claim_retrain_triggers(
    pool: &PgPool,
    job_run_id: Uuid,
    fallback: &str,
) -> Result<Vec<RetrainTrigger>, Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('ops:retrain_triggers', 0))")
        .execute(&mut *tx)
        .await?;
    // A retried attempt answers to what its first attempt claimed.
    let mut claimed: Vec<RetrainTrigger> = sqlx::query_as(
        "select trigger_id, reason, evidence, triggered_at from ops.retrain_triggers
         where job_run_id = $1",
    )
    .bind(job_run_id)
    .fetch_all(&mut *tx)
    .await?;
    if claimed.is_empty() {
        claimed = sqlx::query_as(
            "update ops.retrain_triggers set job_run_id = $1 where job_run_id is null
             returning trigger_id, reason, evidence, triggered_at",
        )
        .bind(job_run_id)
        .fetch_all(&mut *tx)
        .await?;
    }
    if claimed.is_empty() {
        claimed = sqlx::query_as(
            "insert into ops.retrain_triggers (job_run_id, reason) values ($1, $2)
             returning trigger_id, reason, evidence, triggered_at",
        )
        .bind(job_run_id)
        .bind(fallback)
        .fetch_all(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    claimed.sort_by_key(|t| t.trigger_id);
    Ok(claimed)
}

/// One row of a model's metric history, for listings: training and test rows and each version's newest
/// live row per window.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MetricSummary {
    pub model_version: i32,
    /// `training`, `validation`, `test` or `scheduled` (live).
    pub metric_type: String,
    pub window_name: Option<String>,
    pub n_samples: i32,
    pub n_positive: i32,
    pub accuracy: Option<f64>,
    pub f1: Option<f64>,
    pub log_loss: Option<f64>,
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub brier: Option<f64>,
    pub ece: Option<f64>,
    pub computed_at: DateTime<Utc>,
}

/// The metrics of the `versions` newest versions of a model: every offline row and the newest live row
/// per window, by version (newest first) then type.
pub async fn metric_summaries(
    pool: &PgPool,
    model_name: &str,
    versions: i64,
) -> Result<Vec<MetricSummary>, Error> {
    Ok(sqlx::query_as(
        "select distinct on (model_version, metric_type, coalesce(window_name, ''))
                model_version, metric_type, window_name, n_samples, n_positive, accuracy, f1, log_loss,
                roc_auc, pr_auc, brier, ece, computed_at
         from monitoring.model_metrics
         where model_name = $1
           and model_version in (select version from registry.model_versions where model_name = $1
                                 order by version desc limit $2)
         order by model_version desc, metric_type, coalesce(window_name, ''), computed_at desc",
    )
    .bind(model_name)
    .bind(versions)
    .fetch_all(pool)
    .await?)
}

/// The newest drift run of a model with its columns (most drifted first), if any.
pub async fn newest_drift_run(
    pool: &PgPool,
    model_name: &str,
) -> Result<Option<(DriftRun, Vec<DriftColumn>)>, Error> {
    let Some(row) = sqlx::query(
        "select run_id, job_run_id, model_name, model_version, window_start, window_end, n_reference,
                n_current, n_columns, n_drifted, share_drifted, drift_share, dataset_drift,
                prediction_statistic, prediction_score, prediction_drifted
         from monitoring.drift_runs where model_name = $1 order by computed_at desc limit 1",
    )
    .bind(model_name)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let prediction = match (
        row.try_get::<Option<String>, _>("prediction_statistic")?,
        row.try_get::<Option<f64>, _>("prediction_score")?,
        row.try_get::<Option<bool>, _>("prediction_drifted")?,
    ) {
        (Some(statistic), Some(score), Some(drifted)) => Some((statistic, score, drifted)),
        _ => None,
    };
    let run = DriftRun {
        run_id: row.try_get("run_id")?,
        job_run_id: row.try_get("job_run_id")?,
        model_name: row.try_get("model_name")?,
        model_version: row.try_get("model_version")?,
        window: Window {
            name: "drift".to_owned(),
            start: row.try_get("window_start")?,
            end: row.try_get("window_end")?,
        },
        n_reference: i64::from(row.try_get::<i32, _>("n_reference")?),
        n_current: i64::from(row.try_get::<i32, _>("n_current")?),
        n_columns: row.try_get("n_columns")?,
        n_drifted: row.try_get("n_drifted")?,
        share_drifted: row.try_get("share_drifted")?,
        drift_share: row.try_get("drift_share")?,
        dataset_drift: row.try_get("dataset_drift")?,
        prediction,
    };
    let columns = sqlx::query(
        "select feature, coalesce(column_type, '') as column_type, statistic, value, threshold, drifted,
                coalesce(psi, 'NaN'::float8) as psi, coalesce(n_reference, 0)::int8 as n_reference,
                n_samples::int8 as n_current
         from monitoring.drift where run_id = $1 order by drifted desc, feature",
    )
    .bind(run.run_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| {
        Ok(DriftColumn {
            feature: row.try_get("feature")?,
            column_type: row.try_get("column_type")?,
            statistic: row.try_get("statistic")?,
            value: row.try_get("value")?,
            threshold: row.try_get("threshold")?,
            drifted: row.try_get("drifted")?,
            psi: row.try_get("psi")?,
            n_reference: row.try_get("n_reference")?,
            n_current: row.try_get("n_current")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some((run, columns)))
}
