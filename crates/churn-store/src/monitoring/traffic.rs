//! Reads of the classifier's logged traffic (`serving.inference_log`) for drift: the customers the
//! champion scored in a window, parsed out of the logged features, with the probabilities it gave them.

use churn_core::{Customer, VersionNumber};
use futures::TryStreamExt;
use sqlx::PgPool;

use super::Window;
use super::customers::CustomerRow;
use crate::Error;

/// A logged prediction as drift reads it: the customer's fields and the probability served.
struct LoggedRow {
    customer: CustomerRow,
    probability: f64,
}

/// The newest `limit` customers a version scored as champion in a window, through single and batch
/// calls, with the probability served to each.
///
/// The features are the customer as `churn_core::Customer` serializes it (the dataset's labels, yes/no
/// as text); PostgreSQL turns them into typed columns so only what the drift reads crosses the wire.
pub async fn logged_traffic_in(
    pool: &PgPool,
    model_name: &str,
    version: VersionNumber,
    window: &Window,
    limit: i64,
) -> Result<(Vec<Customer>, Vec<f64>), Error> {
    let mut rows = sqlx::query!(
        r#"select f ->> 'country' as "country!", f ->> 'state' as "state!", f ->> 'city' as "city!",
                  f ->> 'zip_code' as "zip_code!", (f ->> 'latitude')::float8 as "latitude!",
                  (f ->> 'longitude')::float8 as "longitude!", f ->> 'gender' as "gender!",
                  (f ->> 'senior_citizen') = 'Yes' as "senior_citizen!",
                  (f ->> 'partner') = 'Yes' as "partner!", (f ->> 'dependents') = 'Yes' as "dependents!",
                  (f ->> 'tenure_months')::int2 as "tenure_months!",
                  (f ->> 'phone_service') = 'Yes' as "phone_service!",
                  f ->> 'multiple_lines' as "multiple_lines!", f ->> 'internet_service' as "internet_service!",
                  f ->> 'online_security' as "online_security!", f ->> 'online_backup' as "online_backup!",
                  f ->> 'device_protection' as "device_protection!", f ->> 'tech_support' as "tech_support!",
                  f ->> 'streaming_tv' as "streaming_tv!", f ->> 'streaming_movies' as "streaming_movies!",
                  f ->> 'contract' as "contract!", (f ->> 'paperless_billing') = 'Yes' as "paperless_billing!",
                  f ->> 'payment_method' as "payment_method!",
                  (f ->> 'monthly_charges')::float8 as "monthly_charges!",
                  (f ->> 'total_charges')::float8 as "total_charges!",
                  (f ->> 'churn_label') = 'Yes' as churn_label,
                  probability
           from (select features as f, probability from serving.inference_log
                 where model_name = $1 and model_version = $2 and arm = 'champion'
                   and source in ('api', 'batch') and predicted_at >= $3 and predicted_at < $4
                 order by predicted_at desc limit $5) as logged"#,
        model_name,
        version.get(),
        window.start,
        window.end,
        limit,
    )
    .fetch(pool)
    .map_ok(|r| LoggedRow {
        customer: CustomerRow {
            country: r.country,
            state: r.state,
            city: r.city,
            zip_code: r.zip_code,
            latitude: r.latitude,
            longitude: r.longitude,
            gender: r.gender,
            senior_citizen: r.senior_citizen,
            partner: r.partner,
            dependents: r.dependents,
            tenure_months: r.tenure_months,
            phone_service: r.phone_service,
            multiple_lines: r.multiple_lines,
            internet_service: r.internet_service,
            online_security: r.online_security,
            online_backup: r.online_backup,
            device_protection: r.device_protection,
            tech_support: r.tech_support,
            streaming_tv: r.streaming_tv,
            streaming_movies: r.streaming_movies,
            contract: r.contract,
            paperless_billing: r.paperless_billing,
            payment_method: r.payment_method,
            monthly_charges: r.monthly_charges,
            total_charges: r.total_charges,
            churn_label: r.churn_label,
        },
        probability: r.probability,
    });
    let (mut customers, mut probabilities) = (Vec::new(), Vec::new());
    while let Some(row) = rows.try_next().await? {
        customers.push(Customer::try_from(row.customer)?);
        probabilities.push(row.probability);
    }
    Ok((customers, probabilities))
}
