//! The read-only role of migration V6 (churn_readonly), connected as itself: it reads the marts and the
//! monitoring schema, including mart tables created after the migration, and nothing else; it never writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use churn_testkit::TestDb;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// V6's views in the monitoring schema, which BI tools read instead of the raw tables.
const MONITORING_VIEWS: [&str; 11] = [
    "aliases",
    "customer_arrivals",
    "dbt_node_results",
    "feature_importance",
    "ingested_files",
    "job_runs",
    "model_versions",
    "predictions",
    "promotion_decisions",
    "rejected_rows",
    "retrain_triggers",
];

/// A connection to the test database as churn_readonly (the test server trusts local connections).
async fn connect_readonly(db: &TestDb) -> PgConnection {
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(churn_store::READONLY_ROLE).unwrap();
    url.set_password(None).unwrap();
    PgConnection::connect(url.as_str()).await.unwrap()
}

/// The SQLSTATE a statement fails with, or None when it succeeds.
async fn sqlstate(conn: &mut PgConnection, sql: &str) -> Option<String> {
    match sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
    {
        Ok(_) => None,
        Err(e) => Some(
            e.as_database_error()
                .and_then(|d| d.code())
                .map_or_else(|| e.to_string(), |c| c.into_owned()),
        ),
    }
}

#[tokio::test]
async fn the_readonly_role_reads_the_marts_and_monitoring_and_nothing_else() {
    let db = TestDb::new().await;
    // A mart table made after the migration by the migrating role, as dbt makes them on every build.
    sqlx::raw_sql(
        "create table marts.dim_example (k int); insert into marts.dim_example values (1);
         create schema if not exists staging; create view staging.stg_example as select 1 as k;",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let mut ro = connect_readonly(&db).await;

    let rows: i64 = sqlx::query_scalar("select count(*) from marts.dim_example")
        .fetch_one(&mut ro)
        .await
        .unwrap();
    assert_eq!(rows, 1, "a mart table created later is readable");
    for table in ["model_metrics", "drift", "drift_runs", "calibration"] {
        let sql = format!("select count(*) from monitoring.{table}");
        assert_eq!(sqlstate(&mut ro, &sql).await, None, "{sql}");
    }
    let views: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.views
         where table_schema = 'monitoring' order by 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(views, MONITORING_VIEWS);
    for view in MONITORING_VIEWS {
        let sql = format!("select * from monitoring.{view} limit 1");
        assert_eq!(sqlstate(&mut ro, &sql).await, None, "{sql}");
    }

    // 42501: insufficient privilege. The raw warehouse, the registry (artifact locations, run
    // parameters), the raw ops tables (refused records verbatim), dbt's staging and snapshots.
    for table in [
        "churn.customers",
        "churn.classified",
        "registry.model_versions",
        "registry.runs",
        "registry.run_params",
        "registry.aliases",
        "ops.job_runs",
        "ops.rejected_records",
        "ops.ingested_files",
        "ops.dbt_invocations",
        "staging.stg_example",
        "public.refinery_schema_history",
    ] {
        let sql = format!("select * from {table} limit 1");
        assert_eq!(
            sqlstate(&mut ro, &sql).await.as_deref(),
            Some("42501"),
            "{sql}"
        );
    }

    // Writes: refused by the read-only default (25006), and by privileges when a transaction asks to
    // write (42501).
    let writes = [
        "insert into marts.dim_example values (2)",
        "delete from monitoring.model_metrics",
        "create table marts.mine (k int)",
        "create table monitoring.mine (k int)",
    ];
    for sql in writes {
        assert_eq!(
            sqlstate(&mut ro, sql).await.as_deref(),
            Some("25006"),
            "{sql}"
        );
        let forced = format!("begin read write; {sql}; commit");
        assert_eq!(
            sqlstate(&mut ro, &forced).await.as_deref(),
            Some("42501"),
            "{forced}"
        );
        sqlstate(&mut ro, "rollback").await;
    }
    let read_only: String = sqlx::query_scalar("show default_transaction_read_only")
        .fetch_one(&mut ro)
        .await
        .unwrap();
    assert_eq!(read_only, "on");
    ro.close().await.unwrap();
}

#[tokio::test]
async fn the_readonly_password_is_set_from_the_configured_value_whatever_its_characters() {
    let db = TestDb::new().await;
    let password = churn_config::Secret::new("it's a \"quoted\" pass; drop role x; --");
    churn_store::set_readonly_password(&db.url, &password)
        .await
        .unwrap();
    // pg_authid holds the password's SCRAM verifier, never the password itself.
    let stored: Option<String> =
        sqlx::query_scalar("select rolpassword from pg_authid where rolname = $1")
            .bind(churn_store::READONLY_ROLE)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let stored = stored.expect("a password is set");
    assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");
    assert!(!stored.contains("quoted"));
    // Migrating again keeps it (the role is created once per server, its password set apart).
    assert!(churn_store::migrate(&db.url).await.unwrap().is_empty());
    let again: Option<String> =
        sqlx::query_scalar("select rolpassword from pg_authid where rolname = $1")
            .bind(churn_store::READONLY_ROLE)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(again.as_deref(), Some(stored.as_str()));
}
