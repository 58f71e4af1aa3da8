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
use sqlx::PgPool;
use sqlx::types::Json;
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
/// JIT (whose compile time exceeds these queries' run time), parallel workers allowed. For the rest of
/// the transaction `conn` is in.
async fn analytic_settings(conn: &mut sqlx::PgConnection) -> Result<(), Error> {
    sqlx::query!(
        "select set_config('work_mem', '256MB', true) as work_mem, set_config('jit', 'off', true) as jit,
                set_config('parallel_setup_cost', '100', true) as parallel_setup_cost"
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// The versions of `model_name` that scored at least one customer in the window, oldest first.
pub async fn versions_scored(
    pool: &PgPool,
    model_name: &str,
    window: &Window,
) -> Result<Vec<i32>, Error> {
    // One index probe per version (they are few) instead of a scan of the window's predictions.
    Ok(sqlx::query_scalar!(
        "select v.version from registry.model_versions v
         where v.model_name = $1 and exists (
             select 1 from churn.classified k
             where k.model_name = v.model_name and k.model_version = v.version
               and k.classified_at >= $2 and k.classified_at < $3)
         order by v.version",
        model_name,
        window.start,
        window.end,
    )
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
    // COPY takes no parameters, so the server writes the values into the statement as literals
    // (format's %L quotes them): the planner sees them as constants, as it would in a plain query, and
    // no value can break out of its literal.
    let statement = sqlx::query_scalar!(
        r#"select format(
               'copy (select classified_at, actual_churn_label, churn_probability
                      from churn.classified
                      where model_name = %L and model_version = %s
                        and classified_at >= %L::timestamptz and classified_at < %L::timestamptz
                        and actual_churn_label is not null)
                to stdout (format binary)',
               $1::text, $2::int4, $3::timestamptz, $4::timestamptz) as "statement!""#,
        model_name,
        version,
        window.start,
        window.end,
    )
    .fetch_one(&mut *conn)
    .await?;
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
    out.threshold = sqlx::query_scalar!(
        "select threshold from churn.classified
         where model_name = $1 and model_version = $2 and classified_at >= $3 and classified_at < $4
         limit 1",
        model_name,
        version,
        window.start,
        window.end,
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(out)
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01), the origin of binary timestamps.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

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
    analytic_settings(&mut tx).await?;
    let mut out = PairedPredictions::default();
    {
        let mut rows = sqlx::query!(
            r#"select a.actual_churn_label as "label!", a.churn_probability as first,
                      b.churn_probability as second
               from churn.classified a
               join churn.classified b on b.customer_id = a.customer_id
                    and b.model_name = a.model_name and b.model_version = $3
               where a.model_name = $1 and a.model_version = $2
                 and a.classified_at >= $4 and a.classified_at < $5
                 and a.actual_churn_label is not null"#,
            model_name,
            first,
            second,
            window.start,
            window.end,
        )
        .fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            out.labels.push(row.label);
            out.first.push(row.first);
            out.second.push(row.second);
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
    Ok(sqlx::query_scalar!(
        "select churn_probability from churn.classified
         where model_name = $1 and model_version = $2 and classified_at >= $3 and classified_at < $4",
        model_name,
        version,
        window.start,
        window.end,
    )
    .fetch_all(pool)
    .await?)
}

/// A `churn.customers` row as the monitoring reads select it, before its categories are parsed.
struct CustomerRow {
    country: String,
    state: String,
    city: String,
    zip_code: String,
    latitude: f64,
    longitude: f64,
    gender: String,
    senior_citizen: bool,
    partner: bool,
    dependents: bool,
    tenure_months: i16,
    phone_service: bool,
    multiple_lines: String,
    internet_service: String,
    online_security: String,
    online_backup: String,
    device_protection: String,
    tech_support: String,
    streaming_tv: String,
    streaming_movies: String,
    contract: String,
    paperless_billing: bool,
    payment_method: String,
    monthly_charges: f64,
    total_charges: f64,
    churn_label: Option<bool>,
}

fn category<T: Category>(column: &str, raw: &str) -> Result<T, Error> {
    T::parse(raw).ok_or_else(|| {
        Error::Database(sqlx::Error::Decode(
            format!(
                "churn.customers.{column} holds {raw:?}, which {}",
                T::allowed()
            )
            .into(),
        ))
    })
}

impl TryFrom<CustomerRow> for Customer {
    type Error = Error;

    fn try_from(row: CustomerRow) -> Result<Customer, Error> {
        Ok(Customer {
            country: row.country,
            state: row.state,
            city: row.city,
            zip_code: row.zip_code,
            latitude: row.latitude,
            longitude: row.longitude,
            gender: category::<Gender>("gender", &row.gender)?,
            senior_citizen: YesNo::from_bool(row.senior_citizen),
            partner: YesNo::from_bool(row.partner),
            dependents: YesNo::from_bool(row.dependents),
            tenure_months: u32::try_from(row.tenure_months).unwrap_or(0),
            phone_service: YesNo::from_bool(row.phone_service),
            multiple_lines: category::<MultipleLines>("multiple_lines", &row.multiple_lines)?,
            internet_service: category::<InternetService>(
                "internet_service",
                &row.internet_service,
            )?,
            online_security: category::<AddOn>("online_security", &row.online_security)?,
            online_backup: category::<AddOn>("online_backup", &row.online_backup)?,
            device_protection: category::<AddOn>("device_protection", &row.device_protection)?,
            tech_support: category::<AddOn>("tech_support", &row.tech_support)?,
            streaming_tv: category::<AddOn>("streaming_tv", &row.streaming_tv)?,
            streaming_movies: category::<AddOn>("streaming_movies", &row.streaming_movies)?,
            contract: category::<Contract>("contract", &row.contract)?,
            paperless_billing: YesNo::from_bool(row.paperless_billing),
            payment_method: category::<PaymentMethod>("payment_method", &row.payment_method)?,
            monthly_charges: row.monthly_charges,
            total_charges: row.total_charges,
            churn_label: row.churn_label.map(YesNo::from_bool),
        })
    }
}

/// The customers written in a window (every source): the newest `limit` of them.
pub async fn customers_in(
    pool: &PgPool,
    window: &Window,
    limit: i64,
) -> Result<Vec<Customer>, Error> {
    let mut rows = sqlx::query_as!(
        CustomerRow,
        r#"select country, state, city, zip_code, latitude, longitude, gender, senior_citizen, partner,
                  dependents, tenure_months, phone_service, multiple_lines, internet_service,
                  online_security, online_backup, device_protection, tech_support, streaming_tv,
                  streaming_movies, contract, paperless_billing, payment_method,
                  monthly_charges::float8 as "monthly_charges!", total_charges::float8 as "total_charges!",
                  churn_label
           from churn.customers
           where inserted_at >= $1 and inserted_at < $2
           order by inserted_at desc limit $3"#,
        window.start,
        window.end,
        limit,
    )
    .fetch(pool);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        out.push(Customer::try_from(row)?);
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
    let mut rows = sqlx::query_as!(
        CustomerRow,
        r#"select country, state, city, zip_code, latitude, longitude, gender, senior_citizen, partner,
                  dependents, tenure_months, phone_service, multiple_lines, internet_service,
                  online_security, online_backup, device_protection, tech_support, streaming_tv,
                  streaming_movies, contract, paperless_billing, payment_method,
                  monthly_charges::float8 as "monthly_charges!", total_charges::float8 as "total_charges!",
                  churn_label
           from churn.customers
           where source = $1 and churn_label is not null
             and ($2::timestamptz is null or coalesce(labelled_at, inserted_at) >= $2)
           order by customer_id desc limit $3"#,
        source as Source,
        since,
        limit,
    )
    .fetch(pool);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        out.push(Customer::try_from(row)?);
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
        let id = sqlx::query_scalar!(
            "insert into monitoring.model_metrics (model_name, model_version, metric_type, window_start,
                 window_end, window_name, job_run_id, n_samples, n_positive, threshold, accuracy,
                 precision, recall, f1, log_loss, roc_auc, pr_auc, brier, ece)
             values ($1, $2, 'scheduled', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                 $17, $18)
             returning metric_id",
            m.model_name,
            m.model_version,
            m.window.start,
            m.window.end,
            m.window.name,
            m.job_run_id,
            i32::try_from(m.n_samples).unwrap_or(i32::MAX),
            i32::try_from(m.n_positive).unwrap_or(i32::MAX),
            m.threshold,
            m.accuracy,
            m.precision,
            m.recall,
            m.f1,
            m.log_loss,
            m.roc_auc,
            m.pr_auc,
            m.brier,
            m.ece,
        )
        .fetch_one(&mut *tx)
        .await?;
        for b in &m.bins {
            sqlx::query!(
                "insert into monitoring.calibration (metric_id, bin, lower_bound, upper_bound, n_samples,
                     n_positive, mean_predicted, observed_rate)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
                id,
                b.bin,
                b.lower,
                b.upper,
                i32::try_from(b.n_samples).unwrap_or(i32::MAX),
                i32::try_from(b.n_positive).unwrap_or(i32::MAX),
                b.mean_predicted,
                b.observed_rate,
            )
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
    sqlx::query!(
        "insert into monitoring.drift_runs (run_id, job_run_id, model_name, model_version, window_start,
             window_end, n_reference, n_current, n_columns, n_drifted, share_drifted, drift_share,
             dataset_drift, prediction_statistic, prediction_score, prediction_drifted)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        run.run_id,
        run.job_run_id,
        run.model_name,
        run.model_version,
        run.window.start,
        run.window.end,
        i32::try_from(run.n_reference).unwrap_or(i32::MAX),
        i32::try_from(run.n_current).unwrap_or(i32::MAX),
        run.n_columns,
        run.n_drifted,
        run.share_drifted,
        run.drift_share,
        run.dataset_drift,
        statistic,
        score,
        drifted,
    )
    .execute(&mut *tx)
    .await?;
    for c in columns {
        sqlx::query!(
            "insert into monitoring.drift (model_name, model_version, feature, statistic, value, threshold,
                 drifted, window_start, window_end, n_samples, run_id, column_type, psi, n_reference)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            run.model_name,
            run.model_version,
            c.feature,
            c.statistic,
            c.value,
            c.threshold,
            c.drifted,
            run.window.start,
            run.window.end,
            i32::try_from(c.n_current).unwrap_or(i32::MAX),
            run.run_id,
            c.column_type,
            c.psi,
            i32::try_from(c.n_reference).unwrap_or(i32::MAX),
        )
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
    Ok(sqlx::query_scalar!(
        "select max(created_at) from registry.model_versions where model_name = $1",
        model_name,
    )
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
    Ok(sqlx::query!(
        "select run_id, dataset_drift, share_drifted from monitoring.drift_runs
         where model_name = $1 and model_version = $2 and computed_at > $3
         order by computed_at desc limit 1",
        model_name,
        version,
        since,
    )
    .fetch_optional(pool)
    .await?
    .map(|r| (r.run_id, r.dataset_drift, r.share_drifted)))
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
    Ok(sqlx::query!(
        r#"select roc_auc as "roc_auc!", n_samples::int8 as "n_samples!", metric_id
           from monitoring.model_metrics
           where model_name = $1 and model_version = $2 and metric_type = 'scheduled'
             and window_name = $3 and computed_at > $4 and n_samples >= $5::int8 and roc_auc is not null
           order by computed_at desc limit 1"#,
        model_name,
        version,
        window_name,
        since,
        min_samples,
    )
    .fetch_optional(pool)
    .await?
    .map(|r| (r.roc_auc, r.n_samples, r.metric_id)))
}

/// Customers of `source` whose label became known after `since`.
pub async fn labelled_since(
    pool: &PgPool,
    source: Source,
    since: DateTime<Utc>,
) -> Result<i64, Error> {
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "count!" from churn.customers
           where source = $1 and churn_label is not null and labelled_at > $2"#,
        source as Source,
        since,
    )
    .fetch_one(pool)
    .await?)
}

/// What [`request_retrain`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerOutcome {
    /// A new trigger was stored, waiting for a retrain run to claim it.
    Stored { trigger_id: i64 },
    /// A trigger is already waiting for a run.
    Pending {
        trigger_id: i64,
        reason: RetrainReason,
    },
    /// A triggered retrain happened within the cooldown: nothing stored.
    CoolingDown { last: DateTime<Utc> },
}

/// Why a retrain was asked for (`ops.retrain_triggers.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum RetrainReason {
    Schedule,
    Manual,
    DatasetDrift,
    LiveAucDrop,
    NewLabels,
    Bootstrap,
}

impl RetrainReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RetrainReason::Schedule => "schedule",
            RetrainReason::Manual => "manual",
            RetrainReason::DatasetDrift => "dataset_drift",
            RetrainReason::LiveAucDrop => "live_auc_drop",
            RetrainReason::NewLabels => "new_labels",
            RetrainReason::Bootstrap => "bootstrap",
        }
    }
}

/// The reasons that count toward the cooldown (the evidence-driven ones, not cron or a person).
pub const EVIDENCE_REASONS: [RetrainReason; 3] = [
    RetrainReason::DatasetDrift,
    RetrainReason::LiveAucDrop,
    RetrainReason::NewLabels,
];

/// Stores a retrain trigger unless one is already waiting or a triggered retrain happened within
/// `cooldown`; replicas deciding at once take turns on a lock, so one trigger is stored.
pub async fn request_retrain(
    pool: &PgPool,
    reason: RetrainReason,
    evidence: &Value,
    cooldown: std::time::Duration,
) -> Result<TriggerOutcome, Error> {
    let mut tx = pool.begin().await?;
    lock_retrain_triggers(&mut tx).await?;
    let pending = sqlx::query!(
        r#"select trigger_id, reason as "reason: RetrainReason" from ops.retrain_triggers
           where job_run_id is null order by triggered_at limit 1"#,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(pending) = pending {
        return Ok(TriggerOutcome::Pending {
            trigger_id: pending.trigger_id,
            reason: pending.reason,
        });
    }
    let cooldown_secs = cooldown.as_secs_f64();
    let last = sqlx::query_scalar!(
        "select max(triggered_at) from ops.retrain_triggers
         where reason = any($1) and triggered_at > now() - make_interval(secs => $2)",
        &EVIDENCE_REASONS.map(RetrainReason::as_str)[..] as &[&str],
        cooldown_secs,
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(last) = last {
        return Ok(TriggerOutcome::CoolingDown { last });
    }
    let trigger_id = sqlx::query_scalar!(
        "insert into ops.retrain_triggers (reason, evidence) values ($1, $2) returning trigger_id",
        reason as _,
        Json(evidence) as _,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(TriggerOutcome::Stored { trigger_id })
}

/// Takes the transaction-scoped lock that makes replicas deciding about retrain triggers take turns.
async fn lock_retrain_triggers(conn: &mut sqlx::PgConnection) -> Result<(), Error> {
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended('ops:retrain_triggers', 0)) as locked"
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// A retrain trigger claimed by a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainTrigger {
    pub trigger_id: i64,
    pub reason: RetrainReason,
    pub evidence: Json<Value>,
    pub triggered_at: DateTime<Utc>,
}

/// Claims every waiting trigger for the run `job_run_id`; when none was waiting, records `fallback`
/// (`schedule` or `manual`) as the run's reason. Returns what the run answers to.
pub async fn claim_retrain_triggers(
    pool: &PgPool,
    job_run_id: Uuid,
    fallback: RetrainReason,
) -> Result<Vec<RetrainTrigger>, Error> {
    let mut tx = pool.begin().await?;
    lock_retrain_triggers(&mut tx).await?;
    // A retried attempt answers to what its first attempt claimed.
    let mut claimed = sqlx::query_as!(
        RetrainTrigger,
        r#"select trigger_id, reason as "reason: RetrainReason", evidence as "evidence: Json<Value>",
                  triggered_at
           from ops.retrain_triggers where job_run_id = $1"#,
        job_run_id,
    )
    .fetch_all(&mut *tx)
    .await?;
    if claimed.is_empty() {
        claimed = sqlx::query_as!(
            RetrainTrigger,
            r#"update ops.retrain_triggers set job_run_id = $1 where job_run_id is null
               returning trigger_id, reason as "reason: RetrainReason",
                         evidence as "evidence: Json<Value>", triggered_at"#,
            job_run_id,
        )
        .fetch_all(&mut *tx)
        .await?;
    }
    if claimed.is_empty() {
        claimed = sqlx::query_as!(
            RetrainTrigger,
            r#"insert into ops.retrain_triggers (job_run_id, reason) values ($1, $2)
               returning trigger_id, reason as "reason: RetrainReason",
                         evidence as "evidence: Json<Value>", triggered_at"#,
            job_run_id,
            fallback as _,
        )
        .fetch_all(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    claimed.sort_by_key(|t| t.trigger_id);
    Ok(claimed)
}

/// One row of a model's metric history, for listings: training and test rows and each version's newest
/// live row per window.
#[derive(Debug, Clone, PartialEq)]
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
    Ok(sqlx::query_as!(
        MetricSummary,
        "select distinct on (model_version, metric_type, coalesce(window_name, ''))
                model_version, metric_type, window_name, n_samples, n_positive, accuracy, f1, log_loss,
                roc_auc, pr_auc, brier, ece, computed_at
         from monitoring.model_metrics
         where model_name = $1
           and model_version in (select version from registry.model_versions where model_name = $1
                                 order by version desc limit $2)
         order by model_version desc, metric_type, coalesce(window_name, ''), computed_at desc",
        model_name,
        versions,
    )
    .fetch_all(pool)
    .await?)
}

/// The newest drift run of a model with its columns (most drifted first), if any.
pub async fn newest_drift_run(
    pool: &PgPool,
    model_name: &str,
) -> Result<Option<(DriftRun, Vec<DriftColumn>)>, Error> {
    let Some(row) = sqlx::query!(
        "select run_id, job_run_id, model_name, model_version, window_start, window_end, n_reference,
                n_current, n_columns, n_drifted, share_drifted, drift_share, dataset_drift,
                prediction_statistic, prediction_score, prediction_drifted
         from monitoring.drift_runs where model_name = $1 order by computed_at desc limit 1",
        model_name,
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let prediction = match (
        row.prediction_statistic,
        row.prediction_score,
        row.prediction_drifted,
    ) {
        (Some(statistic), Some(score), Some(drifted)) => Some((statistic, score, drifted)),
        _ => None,
    };
    let run = DriftRun {
        run_id: row.run_id,
        job_run_id: row.job_run_id,
        model_name: row.model_name,
        model_version: row.model_version,
        window: Window {
            name: "drift".to_owned(),
            start: row.window_start,
            end: row.window_end,
        },
        n_reference: i64::from(row.n_reference),
        n_current: i64::from(row.n_current),
        n_columns: row.n_columns,
        n_drifted: row.n_drifted,
        share_drifted: row.share_drifted,
        drift_share: row.drift_share,
        dataset_drift: row.dataset_drift,
        prediction,
    };
    let columns = sqlx::query_as!(
        DriftColumn,
        r#"select feature, coalesce(column_type, '') as "column_type!", statistic, value, threshold,
                  drifted, coalesce(psi, 'NaN'::float8) as "psi!",
                  coalesce(n_reference, 0)::int8 as "n_reference!", n_samples::int8 as "n_current!"
           from monitoring.drift where run_id = $1 order by drifted desc, feature"#,
        run.run_id,
    )
    .fetch_all(pool)
    .await?;
    Ok(Some((run, columns)))
}
