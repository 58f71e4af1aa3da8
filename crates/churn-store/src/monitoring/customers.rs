//! Reads of `churn.customers` for monitoring and retraining: a window's customers, labelled customers
//! for training, and how many labels arrived since a moment.

use chrono::{DateTime, Utc};
use churn_core::{
    AddOn, Category, Contract, Customer, Gender, InternetService, MultipleLines, PaymentMethod,
    YesNo,
};
use futures::TryStreamExt;
use sqlx::PgPool;

use super::Window;
use crate::Error;
use crate::warehouse::Source;

/// A `churn.customers` row as the monitoring reads select it, before its categories are parsed.
pub(super) struct CustomerRow {
    pub(super) country: String,
    pub(super) state: String,
    pub(super) city: String,
    pub(super) zip_code: String,
    pub(super) latitude: f64,
    pub(super) longitude: f64,
    pub(super) gender: String,
    pub(super) senior_citizen: bool,
    pub(super) partner: bool,
    pub(super) dependents: bool,
    pub(super) tenure_months: i16,
    pub(super) phone_service: bool,
    pub(super) multiple_lines: String,
    pub(super) internet_service: String,
    pub(super) online_security: String,
    pub(super) online_backup: String,
    pub(super) device_protection: String,
    pub(super) tech_support: String,
    pub(super) streaming_tv: String,
    pub(super) streaming_movies: String,
    pub(super) contract: String,
    pub(super) paperless_billing: bool,
    pub(super) payment_method: String,
    pub(super) monthly_charges: f64,
    pub(super) total_charges: f64,
    pub(super) churn_label: Option<bool>,
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

/// Parses each row as it streams in, so a window's rows are never held twice.
async fn customers(
    mut rows: impl futures::Stream<Item = Result<CustomerRow, sqlx::Error>> + Unpin,
) -> Result<Vec<Customer>, Error> {
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        out.push(Customer::try_from(row)?);
    }
    Ok(out)
}

/// The customers written in a window (every source): the newest `limit` of them.
pub async fn customers_in(
    pool: &PgPool,
    window: &Window,
    limit: i64,
) -> Result<Vec<Customer>, Error> {
    let rows = sqlx::query_as!(
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
    customers(rows).await
}

/// Labelled customers of the given sources for training: those labelled at or after `since` when given,
/// the newest `limit` of them.
pub async fn labelled_customers(
    pool: &PgPool,
    source: Source,
    since: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Customer>, Error> {
    let rows = sqlx::query_as!(
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
    customers(rows).await
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
