//! The administrator's statements churnctl runs outside the services: databases created and dropped on
//! a server, the benchmarks' bare COPY, placeholders and row counts, and statistics refreshed after a
//! bulk load.

use std::io::BufRead;
use std::path::Path;

use sqlx::{PgConnection, PgPool, QueryBuilder};

use crate::Error;

/// COPY into `churn.customers` in [`crate::warehouse::CUSTOMER_COLUMNS`] order, the layout
/// [`crate::warehouse::customer_rows`] writes (a test holds the two lists equal).
const COPY_CUSTOMERS: &str = "copy churn.customers (customer_id, source, external_id, country, state, \
    city, zip_code, latitude, longitude, gender, senior_citizen, partner, dependents, tenure_months, \
    phone_service, multiple_lines, internet_service, online_security, online_backup, device_protection, \
    tech_support, streaming_tv, streaming_movies, contract, paperless_billing, payment_method, \
    monthly_charges, total_charges, churn_label) from stdin (format csv)";

/// Creates database `name` on the server `conn` is connected to.
pub async fn create_database(conn: &mut PgConnection, name: &str) -> Result<(), Error> {
    let mut statement = QueryBuilder::new("create database ");
    statement.push(crate::sql::quote_ident(name));
    statement.build().execute(conn).await?;
    Ok(())
}

/// Drops database `name` when it exists, ending the sessions still connected to it.
pub async fn drop_database(conn: &mut PgConnection, name: &str) -> Result<(), Error> {
    let mut statement = QueryBuilder::new("drop database if exists ");
    statement.push(crate::sql::quote_ident(name));
    statement.push(" with (force)");
    statement.build().execute(conn).await?;
    Ok(())
}

/// COPYs a file of CSV rows in the warehouse's layout into `churn.customers` in one statement, streamed in
/// 1 MiB chunks; returns the rows written. The ingestion benchmark's ceiling.
pub async fn copy_customers_file(conn: &mut PgConnection, payload: &Path) -> Result<u64, Error> {
    let io = |source| Error::Io {
        path: payload.display().to_string(),
        source,
    };
    let mut copy = conn.copy_in_raw(COPY_CUSTOMERS).await?;
    let file = std::fs::File::open(payload).map_err(io)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => break,
            Ok(buf) => buf.to_vec(),
            Err(e) => {
                let _ = copy.abort(e.to_string()).await;
                return Err(io(e));
            }
        };
        let n = chunk.len();
        copy.send(chunk).await?;
        reader.consume(n);
    }
    Ok(copy.finish().await?)
}

/// Rows in `churn.customers`.
pub async fn customer_count(pool: &PgPool) -> Result<i64, Error> {
    Ok(
        sqlx::query_scalar!(r#"select count(*) as "count!" from churn.customers"#)
            .fetch_one(pool)
            .await?,
    )
}

/// Predictions of one model version in `churn.classified`.
pub async fn classified_count(
    pool: &PgPool,
    model_name: &str,
    model_version: i32,
) -> Result<i64, Error> {
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "count!" from churn.classified
           where model_name = $1 and model_version = $2"#,
        model_name,
        model_version
    )
    .fetch_one(pool)
    .await?)
}

/// Registers `model_name` and its version `version` pointing at no stored artifact, unless they exist, so
/// rows that reference the version can be written without training a model.
pub async fn register_placeholder_version(
    pool: &PgPool,
    model_name: &str,
    version: i32,
    artifact_key: &str,
    flavor: &str,
) -> Result<(), Error> {
    sqlx::query!(
        "insert into registry.registered_models (name) values ($1) on conflict do nothing",
        model_name
    )
    .execute(pool)
    .await?;
    sqlx::query!(
        "insert into registry.model_versions (model_name, version, artifact_key, artifact_sha256,
             artifact_size, flavor)
         values ($1, $2, $3, repeat('0', 64), 0, $4)
         on conflict do nothing",
        model_name,
        version,
        artifact_key,
        flavor
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Refreshes the planner's statistics of the warehouse tables a bulk load filled, as autovacuum would
/// later.
pub async fn analyze_warehouse(pool: &PgPool) -> Result<(), Error> {
    sqlx::query!("analyze churn.customers, churn.classified")
        .execute(pool)
        .await?;
    Ok(())
}

/// Vacuums and analyzes the inference log and the outcomes after a bulk load (a benchmark's), so reads
/// find the visibility map set and fresh statistics, as autovacuum would leave them.
pub async fn vacuum_serving(pool: &PgPool) -> Result<(), Error> {
    sqlx::query!("vacuum analyze serving.inference_log, serving.outcomes")
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use sqlx::Connection;

    use super::*;

    async fn exists(conn: &mut PgConnection, name: &str) -> bool {
        sqlx::query_scalar!(
            r#"select exists (select 1 from pg_database where datname = $1) as "exists!""#,
            name
        )
        .fetch_one(conn)
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_database_with_a_quote_in_its_name_is_created_and_dropped() {
        let admin_url = churn_testkit::admin_database_url();
        let mut conn = PgConnection::connect(&admin_url).await.unwrap();
        let name = format!("churn_admin \"{}\"", uuid::Uuid::new_v4().simple());
        create_database(&mut conn, &name).await.unwrap();
        assert!(exists(&mut conn, &name).await);
        drop_database(&mut conn, &name).await.unwrap();
        assert!(!exists(&mut conn, &name).await);
        // Dropping what is gone is not an error.
        drop_database(&mut conn, &name).await.unwrap();
    }

    #[test]
    fn the_bare_copy_lists_the_warehouse_columns_in_order() {
        let listed = COPY_CUSTOMERS
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(columns, _)| columns)
            .unwrap_or_default();
        assert_eq!(
            listed.split_whitespace().collect::<Vec<_>>(),
            crate::warehouse::CUSTOMER_COLUMNS
                .split_whitespace()
                .collect::<Vec<_>>()
        );
    }
}
