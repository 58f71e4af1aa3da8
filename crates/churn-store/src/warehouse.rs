//! Warehouse writes: customers with their synthesis and classification rows, by COPY, one transaction
//! per batch, so a batch is either wholly written or not at all.

use std::collections::HashMap;

use churn_core::{Category, Customer, CustomerId, YesNo};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::Error;

/// The next customer id: a ULID (time-ordered, so customers sort by arrival) stored as a uuid. Monotonic
/// within a millisecond for one generator; should it ever overflow (2^80 ids in one millisecond), a fresh
/// ULID is still unique.
pub fn next_customer_id(ids: &mut ulid::Generator) -> CustomerId {
    let id = ids.generate().unwrap_or_else(|_| ulid::Ulid::generate());
    CustomerId::from_uuid(Uuid::from_bytes(id.to_bytes()))
}

/// Where a customer came from (`churn.customers.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Source {
    Synthetic,
    Ingested,
    Seed,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Synthetic => "synthetic",
            Source::Ingested => "ingested",
            Source::Seed => "seed",
        }
    }
}

/// Who synthesized a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synthesis {
    pub synthesizer_name: String,
    pub synthesizer_version: i32,
    pub seed: Option<i64>,
}

/// One model's prediction for one customer (`churn.classified`).
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub customer_id: CustomerId,
    pub model_name: String,
    pub model_version: i32,
    pub churn_probability: f64,
    pub predicted_churn_label: bool,
    pub threshold: f64,
}

/// The columns COPY writes to `churn.customers`, in order, as a literal that `concat!` can build the
/// statements below from (COPY takes no parameters and cannot be a checked query).
macro_rules! customer_columns {
    () => {
        "customer_id, source, external_id, country, state, city, zip_code, latitude, longitude, gender, \
         senior_citizen, partner, dependents, tenure_months, phone_service, multiple_lines, \
         internet_service, online_security, online_backup, device_protection, tech_support, \
         streaming_tv, streaming_movies, contract, paperless_billing, payment_method, monthly_charges, \
         total_charges, churn_label"
    };
}

/// The columns COPY writes to `churn.customers`, in order.
pub const CUSTOMER_COLUMNS: &str = customer_columns!();

/// [`customer_rows`] into `churn.customers`.
const COPY_CUSTOMERS: &str = concat!(
    "copy churn.customers (",
    customer_columns!(),
    ") from stdin (format csv)"
);

/// [`customer_rows_labelled_at`] with a time into `churn.customers`.
const COPY_CUSTOMERS_LABELLED: &str = concat!(
    "copy churn.customers (",
    customer_columns!(),
    ", labelled_at) from stdin (format csv)"
);

/// [`customer_rows`] into the session's staging table of [`upsert_ingested`].
const COPY_INGEST_STAGE: &str = concat!(
    "copy ingest_stage (",
    customer_columns!(),
    ") from stdin (format csv)"
);

const COPY_SYNTHESIZED: &str = "copy churn.synthesized (customer_id, synthesizer_name, \
    synthesizer_version, seed) from stdin (format csv)";

const COPY_CLASSIFIED: &str = "copy churn.classified (customer_id, model_name, model_version, \
    churn_probability, predicted_churn_label, threshold, actual_churn_label) from stdin (format csv)";

fn yes(v: YesNo) -> &'static [u8] {
    if v.is_yes() { b"t" } else { b"f" }
}

/// Appends one CSV field, quoted only when it must be (commas, quotes, line breaks). An empty field
/// would read as NULL, so text fields are never empty here (validation guarantees it).
fn text(out: &mut Vec<u8>, value: &str) {
    if value
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        || value.is_empty()
    {
        out.push(b'"');
        for b in value.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(value.as_bytes());
    }
}

fn float(out: &mut Vec<u8>, value: f64) {
    let mut buf = ryu::Buffer::new();
    out.extend_from_slice(buf.format(value).as_bytes());
}

fn int(out: &mut Vec<u8>, value: impl itoa::Integer) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(value).as_bytes());
}

fn uuid(out: &mut Vec<u8>, id: &CustomerId) {
    let mut buf = Uuid::encode_buffer();
    out.extend_from_slice(id.as_uuid().hyphenated().encode_lower(&mut buf).as_bytes());
}

/// CSV rows for `churn.customers` in [`CUSTOMER_COLUMNS`] order, as COPY reads them.
pub fn customer_rows(
    source: Source,
    customers: &[(CustomerId, &Customer, Option<&str>)],
) -> Vec<u8> {
    customer_rows_labelled_at(source, customers, None)
}

/// [`customer_rows`], each ending with a `labelled_at` field when `labelled_at` is given: that time on
/// the rows that carry a label, NULL on the others.
fn customer_rows_labelled_at(
    source: Source,
    customers: &[(CustomerId, &Customer, Option<&str>)],
    labelled_at: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(customers.len() * 320);
    for (id, c, external_id) in customers {
        uuid(&mut out, id);
        out.push(b',');
        out.extend_from_slice(source.as_str().as_bytes());
        out.push(b',');
        if let Some(external) = external_id {
            text(&mut out, external);
        }
        for field in [&c.country, &c.state, &c.city, &c.zip_code] {
            out.push(b',');
            text(&mut out, field);
        }
        out.push(b',');
        float(&mut out, c.latitude);
        out.push(b',');
        float(&mut out, c.longitude);
        out.push(b',');
        out.extend_from_slice(c.gender.label().as_bytes());
        for v in [c.senior_citizen, c.partner, c.dependents] {
            out.push(b',');
            out.extend_from_slice(yes(v));
        }
        out.push(b',');
        int(&mut out, c.tenure_months);
        out.push(b',');
        out.extend_from_slice(yes(c.phone_service));
        out.push(b',');
        text(&mut out, c.multiple_lines.label());
        out.push(b',');
        text(&mut out, c.internet_service.label());
        for add_on in c.add_ons() {
            out.push(b',');
            text(&mut out, add_on.label());
        }
        out.push(b',');
        text(&mut out, c.contract.label());
        out.push(b',');
        out.extend_from_slice(yes(c.paperless_billing));
        out.push(b',');
        text(&mut out, c.payment_method.label());
        out.push(b',');
        float(&mut out, c.monthly_charges);
        out.push(b',');
        float(&mut out, c.total_charges);
        out.push(b',');
        if let Some(label) = c.churn_label {
            out.extend_from_slice(yes(label));
        }
        if let Some(at) = labelled_at {
            out.push(b',');
            if c.churn_label.is_some() {
                out.extend_from_slice(at.as_bytes());
            }
        }
        out.push(b'\n');
    }
    out
}

/// A pooled connection that goes back to the pool only through [`Guarded::release`]. Dropped any other
/// way (the future writing a batch was cut off by a job's timeout, or the batch failed) it is closed: a
/// connection left halfway through a COPY must not be handed to the next user of the pool.
struct Guarded(Option<sqlx::pool::PoolConnection<sqlx::Postgres>>);

impl Guarded {
    fn connection(&mut self) -> &mut PgConnection {
        // Only `release` and `drop` take the connection out, and both consume the guard.
        self.0
            .as_deref_mut()
            .expect("a guarded connection is held until released")
    }

    fn release(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut conn) = self.0.take() {
            conn.close_on_drop();
        }
    }
}

async fn copy(conn: &mut PgConnection, statement: &str, rows: Vec<u8>) -> Result<u64, Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    if let Err(e) = copy.send(rows).await {
        let _ = copy.abort(e.to_string()).await;
        return Err(e.into());
    }
    Ok(copy.finish().await?)
}

/// Writes synthetic customers, who synthesized them and every prediction made for them, in one
/// transaction (three COPYs): all of the batch is written, or none of it.
pub async fn write_generated(
    pool: &PgPool,
    customers: &[(CustomerId, Customer)],
    synthesis: &Synthesis,
    classifications: &[Classification],
) -> Result<(), Error> {
    let rows: Vec<(CustomerId, &Customer, Option<&str>)> =
        customers.iter().map(|(id, c)| (*id, c, None)).collect();
    let customer_csv = customer_rows(Source::Synthetic, &rows);
    let mut synthesized = Vec::with_capacity(customers.len() * 64);
    for (id, _) in customers {
        uuid(&mut synthesized, id);
        synthesized.push(b',');
        text(&mut synthesized, &synthesis.synthesizer_name);
        synthesized.push(b',');
        int(&mut synthesized, synthesis.synthesizer_version);
        synthesized.push(b',');
        if let Some(seed) = synthesis.seed {
            int(&mut synthesized, seed);
        }
        synthesized.push(b'\n');
    }
    // Each prediction carries its customer's label (migration V7), so the database need not look it up.
    let labels: HashMap<CustomerId, Option<bool>> = customers
        .iter()
        .map(|(id, c)| (*id, c.churn_label.map(YesNo::is_yes)))
        .collect();
    let mut classified = Vec::with_capacity(classifications.len() * 96);
    for c in classifications {
        uuid(&mut classified, &c.customer_id);
        classified.push(b',');
        text(&mut classified, &c.model_name);
        classified.push(b',');
        int(&mut classified, c.model_version);
        classified.push(b',');
        float(&mut classified, c.churn_probability);
        classified.push(b',');
        classified.extend_from_slice(if c.predicted_churn_label { b"t" } else { b"f" });
        classified.push(b',');
        float(&mut classified, c.threshold);
        classified.push(b',');
        // Empty reads as NULL; a prediction for a customer outside this batch gets its label from the
        // database's trigger instead.
        if let Some(label) = labels.get(&c.customer_id).copied().flatten() {
            classified.push(if label { b't' } else { b'f' });
        }
        classified.push(b'\n');
    }

    let mut conn = Guarded(Some(pool.acquire().await?));
    let mut tx = sqlx::Connection::begin(conn.connection()).await?;
    copy(&mut tx, COPY_CUSTOMERS, customer_csv).await?;
    copy(&mut tx, COPY_SYNTHESIZED, synthesized).await?;
    copy(&mut tx, COPY_CLASSIFIED, classified).await?;
    tx.commit().await?;
    conn.release();
    Ok(())
}

/// Writes the staged rows of [`upsert_ingested`] and counts what it did. A known business id updates
/// everything a business file may change (the label only when the row has one, so a file without
/// outcomes never erases one). Not a checked query: `ingest_stage` is a temporary table, which no
/// database holds when the query is checked.
const UPSERT_STAGED: &str = concat!(
    "with written as (insert into churn.customers (",
    customer_columns!(),
    ", labelled_at) select ",
    customer_columns!(),
    ", case when churn_label is not null then now() end from ingest_stage \
     on conflict (external_id) where external_id is not null do update set \
     country = excluded.country, state = excluded.state, city = excluded.city, \
     zip_code = excluded.zip_code, latitude = excluded.latitude, longitude = excluded.longitude, \
     gender = excluded.gender, senior_citizen = excluded.senior_citizen, partner = excluded.partner, \
     dependents = excluded.dependents, tenure_months = excluded.tenure_months, \
     phone_service = excluded.phone_service, multiple_lines = excluded.multiple_lines, \
     internet_service = excluded.internet_service, online_security = excluded.online_security, \
     online_backup = excluded.online_backup, device_protection = excluded.device_protection, \
     tech_support = excluded.tech_support, streaming_tv = excluded.streaming_tv, \
     streaming_movies = excluded.streaming_movies, contract = excluded.contract, \
     paperless_billing = excluded.paperless_billing, payment_method = excluded.payment_method, \
     monthly_charges = excluded.monthly_charges, total_charges = excluded.total_charges, \
     churn_label = coalesce(excluded.churn_label, customers.churn_label), \
     labelled_at = case when excluded.churn_label is not null \
         and excluded.churn_label is distinct from customers.churn_label then now() \
         else customers.labelled_at end \
     returning (xmax = 0) as inserted) \
     select count(*) filter (where inserted) as inserted, \
         count(*) filter (where not inserted) as updated from written"
);

/// What [`UPSERT_STAGED`] counted.
#[derive(sqlx::FromRow)]
struct StagedCounts {
    inserted: i64,
    updated: i64,
}

/// How many ingested rows added customers and how many changed known ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upserted {
    pub inserted: u64,
    pub updated: u64,
}

/// Writes ingested customers inside the caller's transaction: a row whose business id (`external_id`)
/// is known updates that customer, any other row is inserted under its new id with source `ingested`;
/// a label that arrives sets `labelled_at`, which the retrain trigger counts.
///
/// The rows go by COPY into a temporary table and from there in one `insert … on conflict`, so a batch
/// costs two statements whatever its size. Business ids must be distinct within `rows` (one statement
/// cannot change a row twice); the caller keeps the last of each.
pub async fn upsert_ingested(
    conn: &mut PgConnection,
    rows: &[(CustomerId, &Customer, Option<&str>)],
) -> Result<Upserted, Error> {
    if rows.is_empty() {
        return Ok(Upserted::default());
    }
    // A batch of customers never seen before (a file of new customers, the common case) goes straight
    // in by COPY, as fast as the table takes rows. A batch naming a known business id (or one a
    // concurrent writer adds meanwhile) makes that COPY fail on the unique index at the first such
    // row: the savepoint undoes it and the staged upsert below runs instead. Trying first costs at most
    // the rows before that first known id, and spares every new-customer batch a lookup of its ids.
    let now = sqlx::query_scalar!(r#"select now() as "now!""#)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query!("savepoint ingest_direct")
        .execute(&mut *conn)
        .await?;
    // The transaction's now(), as the upsert's `now()` would write it.
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let direct = copy(
        conn,
        COPY_CUSTOMERS_LABELLED,
        customer_rows_labelled_at(Source::Ingested, rows, Some(&at)),
    )
    .await;
    match direct {
        Ok(inserted) => {
            sqlx::query!("release savepoint ingest_direct")
                .execute(&mut *conn)
                .await?;
            return Ok(Upserted {
                inserted,
                updated: 0,
            });
        }
        Err(Error::Database(e))
            if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505") =>
        {
            sqlx::query!("rollback to savepoint ingest_direct")
                .execute(&mut *conn)
                .await?;
        }
        Err(e) => return Err(e),
    }
    sqlx::query!(
        "create temporary table if not exists ingest_stage
         (like churn.customers including defaults) on commit delete rows"
    )
    .execute(&mut *conn)
    .await?;
    copy(
        conn,
        COPY_INGEST_STAGE,
        customer_rows(Source::Ingested, rows),
    )
    .await?;
    let counts: StagedCounts = sqlx::query_as(UPSERT_STAGED).fetch_one(&mut *conn).await?;
    // Emptied now as well as at commit: a caller may write several batches in one transaction. (Not a
    // checked query, for the reason given at UPSERT_STAGED.)
    sqlx::query("truncate ingest_stage")
        .execute(&mut *conn)
        .await?;
    Ok(Upserted {
        inserted: counts.inserted as u64,
        updated: counts.updated as u64,
    })
}

/// COPYs `customers` straight into `churn.customers` (source `ingested`): the ceiling the ingestion
/// benchmark compares against.
pub async fn copy_customers(
    conn: &mut PgConnection,
    rows: &[(CustomerId, &Customer, Option<&str>)],
) -> Result<u64, Error> {
    copy(conn, COPY_CUSTOMERS, customer_rows(Source::Ingested, rows)).await
}

/// How many of `ids` are in `churn.customers`: after a failure whose outcome is unknown (the connection
/// dropped during COMMIT), this tells whether the batch landed.
pub async fn count_customers(pool: &PgPool, ids: &[CustomerId]) -> Result<i64, Error> {
    let ids: Vec<Uuid> = ids.iter().map(CustomerId::as_uuid).collect();
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "count!" from churn.customers where customer_id = any($1)"#,
        &ids,
    )
    .fetch_one(pool)
    .await?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_are_quoted_only_when_they_must_be() {
        let mut out = Vec::new();
        text(&mut out, "Los Angeles");
        out.push(b'|');
        text(&mut out, "Bank transfer (automatic)");
        out.push(b'|');
        text(&mut out, "a,\"b\"");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Los Angeles|Bank transfer (automatic)|\"a,\"\"b\"\"\""
        );
    }
}
