//! The read-only role of migration V6 (churn_readonly), connected as itself: it reads the marts and the
//! monitoring schema, including mart tables created after the migration, and nothing else; it never writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use churn_store::sql::quote_ident;
use churn_testkit::TestDb;
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder, SqlSafeStr, SqlStr};

/// V6's views in the monitoring schema, which BI tools read instead of the raw tables.
const MONITORING_VIEWS: [&str; 13] = [
    "aliases",
    "customer_arrivals",
    "dbt_node_results",
    "feature_importance",
    "inference_requests",
    "ingested_files",
    "job_runs",
    "model_versions",
    "outcome_arrivals",
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

/// `select <columns> from <schema>.<table> limit 1`, the names quoted.
fn select_from(columns: &str, schema: &str, table: &str) -> SqlStr {
    let mut sql = QueryBuilder::<Postgres>::new("select ");
    sql.push(columns)
        .push(" from ")
        .push(quote_ident(schema))
        .push('.')
        .push(quote_ident(table))
        .push(" limit 1");
    sql.into_sql()
}

/// The SQLSTATE a statement fails with, or None when it succeeds.
async fn sqlstate(conn: &mut PgConnection, sql: impl SqlSafeStr) -> Option<String> {
    match sqlx::raw_sql(sql).execute(&mut *conn).await {
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

    // Not a checked query: the table is this test's own.
    let rows: i64 = sqlx::query_scalar("select count(*) from marts.dim_example")
        .fetch_one(&mut ro)
        .await
        .unwrap();
    assert_eq!(rows, 1, "a mart table created later is readable");
    for table in [
        "model_metrics",
        "drift",
        "drift_runs",
        "calibration",
        "cohort_metrics",
    ] {
        let sql = select_from("count(*)", "monitoring", table);
        assert_eq!(
            sqlstate(&mut ro, sql.clone()).await,
            None,
            "{}",
            sql.as_str()
        );
    }
    let views: Vec<String> = sqlx::query_scalar!(
        r#"select table_name::text as "table_name!" from information_schema.views
           where table_schema = 'monitoring' order by 1"#,
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(views, MONITORING_VIEWS);
    for view in MONITORING_VIEWS {
        let sql = select_from("*", "monitoring", view);
        assert_eq!(
            sqlstate(&mut ro, sql.clone()).await,
            None,
            "{}",
            sql.as_str()
        );
    }

    // 42501: insufficient privilege. The raw warehouse, the registry (artifact locations, run
    // parameters), the raw ops tables (refused records verbatim), the inference log and outcomes
    // (features, callers' customer ids), dbt's staging and snapshots.
    for (schema, table) in [
        ("churn", "customers"),
        ("churn", "classified"),
        ("serving", "inference_log"),
        ("serving", "outcomes"),
        ("registry", "model_versions"),
        ("registry", "runs"),
        ("registry", "run_params"),
        ("registry", "aliases"),
        ("ops", "job_runs"),
        ("ops", "rejected_records"),
        ("ops", "ingested_files"),
        ("ops", "dbt_invocations"),
        ("staging", "stg_example"),
        ("public", "refinery_schema_history"),
    ] {
        let sql = select_from("*", schema, table);
        assert_eq!(
            sqlstate(&mut ro, sql.clone()).await.as_deref(),
            Some("42501"),
            "{}",
            sql.as_str()
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
        let mut forced = QueryBuilder::<Postgres>::new("begin read write; ");
        forced.push(sql).push("; commit");
        let forced = forced.into_sql();
        assert_eq!(
            sqlstate(&mut ro, forced.clone()).await.as_deref(),
            Some("42501"),
            "{}",
            forced.as_str()
        );
        sqlstate(&mut ro, "rollback").await;
    }
    let read_only = sqlx::query_scalar!(
        r#"select current_setting('default_transaction_read_only') as "setting!""#
    )
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
    let readonly = churn_config::DATABASE_ROLES
        .into_iter()
        .find(|r| r.name == churn_store::READONLY_ROLE)
        .unwrap();
    churn_store::set_role_passwords(
        &db.url,
        &[churn_config::RolePassword {
            role: readonly,
            password,
        }],
    )
    .await
    .unwrap();
    // pg_authid holds the password's SCRAM verifier, never the password itself.
    let stored = sqlx::query_scalar!(
        "select rolpassword from pg_authid where rolname = $1",
        churn_store::READONLY_ROLE,
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let stored = stored.expect("a password is set");
    assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");
    assert!(!stored.contains("quoted"));
    // Migrating again keeps it (the role is created once per server, its password set apart).
    assert!(churn_store::migrate(&db.url).await.unwrap().is_empty());
    let again = sqlx::query_scalar!(
        "select rolpassword from pg_authid where rolname = $1",
        churn_store::READONLY_ROLE,
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(again.as_deref(), Some(stored.as_str()));
}
