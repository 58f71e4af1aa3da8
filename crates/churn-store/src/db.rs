//! The PostgreSQL connection pool and a readiness probe.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::Error;

/// Opens a pool to `url`. It fails fast when the database does not answer, so start-up errors say so.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(Error::Connect)
}

/// Opens a pool without connecting, for services that must start (and report not-ready) while the
/// database is down.
pub fn connect_lazy(url: &str, max_connections: u32) -> Result<PgPool, Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy(url)
        .map_err(Error::Connect)
}

/// Whether the database answers a trivial query.
pub async fn ping(pool: &PgPool) -> Result<(), Error> {
    sqlx::query!("select 1 as alive").fetch_one(pool).await?;
    Ok(())
}
