//! Applies the refinery migrations of `migrations/` over a sqlx connection, one process at a time.
//!
//! refinery ships drivers for tokio-postgres, but those would need a second TLS stack for managed
//! databases that require TLS. Running refinery's runner over the same sqlx connection the services use
//! keeps one connection configuration (including `sslmode`) for everything.

use refinery::{Migration, Report};
use refinery_core::traits::r#async::{AsyncMigrate, AsyncQuery, AsyncTransaction};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Error;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Key of the session-level advisory lock that serializes migration runs across processes.
const MIGRATION_LOCK_KEY: i64 = 0x6368_7572_6e5f_6d67; // "churn_mg"

/// Every migration compiled into this binary, in order: (version, name).
pub fn embedded_migrations() -> Vec<(i32, String)> {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| (m.version(), m.name().to_owned()))
        .collect()
}

/// Applies pending migrations to the database at `url` and returns the versions applied now.
///
/// Safe to call from several processes at once: the run holds a Postgres advisory lock, so the second
/// caller waits and then finds nothing left to do. Applying twice is a no-op.
pub async fn migrate(url: &str) -> Result<Vec<i32>, Error> {
    let mut conn = PgConnection::connect(url).await.map_err(Error::Connect)?;
    sqlx::query("select pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .await?;
    // refinery names its history table without a schema. Pin it to `public`: with a role called
    // `churn` (as compose creates) the default path `"$user", public` would find our `churn` schema
    // first once it exists, and the next run would see an empty history there and re-apply everything.
    sqlx::query("set search_path to public")
        .execute(&mut conn)
        .await?;
    let mut adapter = SqlxMigrator(conn);
    let result = embedded::migrations::runner()
        .set_abort_divergent(true)
        .run_async(&mut adapter)
        .await;
    let SqlxMigrator(mut conn) = adapter;
    // Unlock even when the run failed; closing the connection would release it too.
    let _ = sqlx::query("select pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    let report: Report = result.map_err(|e| Error::Migration(e.to_string()))?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(Migration::version)
        .collect())
}

/// refinery's async driver traits over one sqlx Postgres connection.
struct SqlxMigrator(PgConnection);

impl AsyncTransaction for SqlxMigrator {
    type Error = sqlx::Error;

    async fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(
        &'a mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let mut tx = self.0.begin().await?;
        let mut count = 0;
        for query in queries {
            // Migration files are ours, compiled into the binary: not user input.
            sqlx::raw_sql(AssertSqlSafe(query.to_owned()))
                .execute(&mut *tx)
                .await?;
            count += 1;
        }
        tx.commit().await?;
        Ok(count)
    }
}

impl AsyncQuery<Vec<Migration>> for SqlxMigrator {
    async fn query<'a>(&'a mut self, query: &'a str) -> Result<Vec<Migration>, Self::Error> {
        let rows = sqlx::query(AssertSqlSafe(query.to_owned()))
            .fetch_all(&mut self.0)
            .await?;
        rows.iter()
            .map(|row| {
                let version: i32 = row.try_get(0)?;
                let name: String = row.try_get(1)?;
                let applied_on: String = row.try_get(2)?;
                let checksum: String = row.try_get(3)?;
                let decode =
                    |what: &str, e: String| sqlx::Error::Decode(format!("{what}: {e}").into());
                let applied_on = OffsetDateTime::parse(&applied_on, &Rfc3339)
                    .map_err(|e| decode("applied_on", e.to_string()))?;
                let checksum = checksum
                    .parse::<u64>()
                    .map_err(|e| decode("checksum", e.to_string()))?;
                Ok(Migration::applied(version, name, applied_on, checksum))
            })
            .collect()
    }
}

impl AsyncMigrate for SqlxMigrator {}
