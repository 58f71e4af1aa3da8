//! Reads of model versions' predictions in a window: the versions that scored, one version's labelled
//! predictions (binary COPY), two versions' paired predictions, and one version's probabilities.

use chrono::{DateTime, Utc};
use churn_core::VersionNumber;
use futures::TryStreamExt;
use sqlx::PgPool;

use super::Window;
use super::copy::{PG_EPOCH_MICROS, copy_error, copy_out_binary, fixed};
use crate::Error;

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
) -> Result<Vec<VersionNumber>, Error> {
    // One index probe per version (they are few) instead of a scan of the window's predictions.
    Ok(sqlx::query_scalar!(
        r#"select v.version as "version: VersionNumber" from registry.model_versions v
         where v.model_name = $1 and exists (
             select 1 from churn.classified k
             where k.model_name = v.model_name and k.model_version = v.version
               and k.classified_at >= $2 and k.classified_at < $3)
         order by v.version"#,
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
    version: VersionNumber,
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
        version.get(),
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
        version.get(),
        window.start,
        window.end,
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(out)
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
    first: VersionNumber,
    second: VersionNumber,
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
            first.get(),
            second.get(),
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
    version: VersionNumber,
    window: &Window,
) -> Result<Vec<f64>, Error> {
    Ok(sqlx::query_scalar!(
        "select churn_probability from churn.classified
         where model_name = $1 and model_version = $2 and classified_at >= $3 and classified_at < $4",
        model_name,
        version.get(),
        window.start,
        window.end,
    )
    .fetch_all(pool)
    .await?)
}
