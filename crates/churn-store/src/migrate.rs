//! Applies the refinery migrations of `migrations/` over a sqlx connection, one process at a time.
//!
//! refinery ships drivers for tokio-postgres, but those would need a second TLS stack for managed
//! databases that require TLS. Running refinery's runner over the same sqlx connection the services use
//! keeps one connection configuration (including `sslmode`) for everything.

use refinery::{Migration, Report};
use refinery_core::traits::r#async::{AsyncMigrate, AsyncQuery, AsyncTransaction};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Error;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// How long connecting to the database may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a migrator waits for another one to finish.
const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Key of the session-level advisory lock that serializes migration runs across processes.
const MIGRATION_LOCK_KEY: i64 = 0x6368_7572_6e5f_6d67; // "churn_mg"

/// Every migration compiled into this binary, in order: (version, name).
pub fn embedded_migrations() -> Vec<(i32, String)> {
    let mut migrations: Vec<(i32, String)> = embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| (m.version(), m.name().to_owned()))
        .collect();
    // refinery lists them in file-name order, where V10 comes before V2; they apply in version order.
    migrations.sort_by_key(|m| m.0);
    migrations
}

/// Applies pending migrations to the database at `url` and returns the versions applied now.
///
/// Safe to call from several processes at once: the run holds a Postgres advisory lock, so the second
/// caller waits and then finds nothing left to do. Applying twice is a no-op.
pub async fn migrate(url: &str) -> Result<Vec<i32>, Error> {
    let conn = connect_locked(url).await?;
    let mut adapter = SqlxMigrator(conn);
    let result = embedded::migrations::runner()
        .set_abort_divergent(true)
        .run_async(&mut adapter)
        .await;
    let SqlxMigrator(conn) = adapter;
    unlock(conn).await;
    let report: Report = result.map_err(|e| Error::Migration(e.to_string()))?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(Migration::version)
        .collect())
}

/// Connects to `url` and takes the migration lock (waiting up to [`LOCK_TIMEOUT`] for another holder),
/// with `public` first on the search path.
pub(crate) async fn connect_locked(url: &str) -> Result<PgConnection, Error> {
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url))
        .await
        .map_err(|_| {
            Error::Connect(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "connecting took longer than {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            )))
        })?
        .map_err(Error::Connect)?;
    // Another process may hold the lock while it migrates; waiting is right, waiting forever is not.
    set_lock_timeout(&mut conn, LOCK_TIMEOUT).await?;
    sqlx::query!("select pg_advisory_lock($1) as locked", MIGRATION_LOCK_KEY)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| {
            Error::Migration(format!(
                "could not take the migration lock within {} s (another process migrating?): {e}",
                LOCK_TIMEOUT.as_secs()
            ))
        })?;
    set_lock_timeout(&mut conn, std::time::Duration::ZERO).await?;
    // refinery names its history table without a schema. Pin it to `public`: with a role called
    // `churn` (as compose creates) the default path `"$user", public` would find our `churn` schema
    // first once it exists, and the next run would see an empty history there and re-apply everything.
    sqlx::query!("select set_config('search_path', 'public', false) as search_path")
        .fetch_one(&mut conn)
        .await?;
    Ok(conn)
}

/// Sets the session's `lock_timeout` (zero: wait for locks without limit).
async fn set_lock_timeout(
    conn: &mut PgConnection,
    timeout: std::time::Duration,
) -> Result<(), Error> {
    // A bare number is read as milliseconds.
    sqlx::query!(
        "select set_config('lock_timeout', $1, false) as lock_timeout",
        timeout.as_millis().to_string(),
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// Releases the migration lock (closing the connection would release it too) and closes the connection.
pub(crate) async fn unlock(mut conn: PgConnection) {
    let _ = sqlx::query!(
        "select pg_advisory_unlock($1) as released",
        MIGRATION_LOCK_KEY
    )
    .fetch_one(&mut conn)
    .await;
    let _ = conn.close().await;
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
            // Migration files are ours, compiled into the binary: not user input. They are the one
            // place SQL arrives as text at run time, so the one place that asserts it safe.
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
        // refinery's own query of its history table (version, name, applied_on, checksum).
        let rows: Vec<HistoryRow> = sqlx::query_as(AssertSqlSafe(query.to_owned()))
            .fetch_all(&mut self.0)
            .await?;
        rows.into_iter()
            .map(|row| {
                let HistoryRow {
                    version,
                    name,
                    applied_on,
                    checksum,
                } = row;
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

/// A row of refinery's history table, as refinery's query selects it.
#[derive(sqlx::FromRow)]
struct HistoryRow {
    version: i32,
    name: String,
    applied_on: String,
    checksum: String,
}
