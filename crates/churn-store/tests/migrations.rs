//! Migrations against a real PostgreSQL: idempotent, safe concurrently, and constraints that refuse bad rows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use churn_store::sql::quote_ident;
use churn_testkit::{TestDb, applied_migrations, migration_versions};
use sqlx::{PgPool, Postgres, QueryBuilder};

/// Tables the migrations create in our schemas (V1: 16; V2, dbt results: 3; V3, job state: 1; V4, monitoring: 3;
/// V5, ingestion: 1; V10, the audit log: 1; V12, monitoring.cohort_metrics: 1). V6's monitoring views are
/// counted in tests/readonly.rs.
const TABLES: i64 = 26;

async fn table_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar!(
        r#"select count(*) as "count!" from information_schema.tables
           where table_schema in ('churn', 'registry', 'monitoring', 'ops')
             and table_type = 'BASE TABLE'"#,
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn migrations_create_every_schema_and_applying_twice_changes_nothing() {
    let db = TestDb::empty().await;
    let first = churn_store::migrate(&db.url).await.unwrap();
    let expected = migration_versions();
    assert_eq!(first, expected);
    let tables = table_count(&db.pool).await;
    assert_eq!(tables, TABLES);

    let second = churn_store::migrate(&db.url).await.unwrap();
    assert!(second.is_empty());
    assert_eq!(table_count(&db.pool).await, tables);
    assert_eq!(applied_migrations(&db.pool).await, expected);
}

/// The official postgres image with POSTGRES_USER=churn gives a role named like our `churn` schema, and
/// the default search path `"$user", public` then puts that schema first once it exists.
#[tokio::test]
async fn migrations_apply_twice_when_the_search_path_puts_our_schema_first() {
    let db = TestDb::empty().await;
    QueryBuilder::<Postgres>::new("alter database ")
        .push(quote_ident(&db.name))
        .push(" set search_path = churn, public")
        .build()
        .execute(&db.pool)
        .await
        .unwrap();
    let expected = migration_versions();
    assert_eq!(churn_store::migrate(&db.url).await.unwrap(), expected);
    let second = churn_store::migrate(&db.url).await.unwrap();
    assert!(second.is_empty(), "re-applied {second:?}");
    assert_eq!(applied_migrations(&db.pool).await, expected);
}

#[tokio::test]
async fn concurrent_migrations_leave_one_schema() {
    let db = TestDb::empty().await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { churn_store::migrate(&url).await })
        })
        .collect();
    let mut applied_total = 0;
    for run in runs {
        applied_total += run.await.unwrap().unwrap().len();
    }
    let expected = migration_versions();
    // Exactly one of the runs applied each migration; the others found nothing to do.
    assert_eq!(applied_total, expected.len());
    assert_eq!(applied_migrations(&db.pool).await, expected);
    assert_eq!(table_count(&db.pool).await, TABLES);
}

const VALID_CUSTOMER: &str = "insert into churn.customers (customer_id, source, country, state, city,
    zip_code, latitude, longitude, gender, senior_citizen, partner, dependents, tenure_months,
    phone_service, multiple_lines, internet_service, online_security, online_backup, device_protection,
    tech_support, streaming_tv, streaming_movies, contract, paperless_billing, payment_method,
    monthly_charges, total_charges, churn_label)
    values (gen_random_uuid(), 'seed', 'United States', 'California', 'Los Angeles', '90003', 33.96,
    -118.27, 'Male', false, false, false, 2, true, 'No', 'DSL', 'Yes', 'Yes', 'No', 'No', 'No', 'No',
    'Month-to-month', true, 'Mailed check', 53.85, 108.15, true)";

/// The constraint a statement breaks, if any. `sql` is one of this file's literal statements, some with
/// a value swapped for a bad one: test text, never outside input.
async fn violated_constraint(pool: &PgPool, sql: &str) -> Option<String> {
    match sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
    {
        Ok(_) => None,
        Err(sqlx::Error::Database(e)) => e.constraint().map(str::to_owned),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn the_customers_table_refuses_rows_that_break_the_rules() {
    let db = TestDb::new().await;
    assert_eq!(violated_constraint(&db.pool, VALID_CUSTOMER).await, None);
    let cases = [
        ("'DSL', 'Yes'", "'No', 'Yes'", "customers_internet_rule"),
        (
            "true, 'No', 'DSL'",
            "false, 'No', 'DSL'",
            "customers_phone_rule",
        ),
        ("'Male'", "'Robot'", "customers_gender_check"),
        (
            "false, 2, true",
            "false, 1000, true",
            "customers_tenure_check",
        ),
        ("53.85", "-1", "customers_charges_check"),
        ("'90003'", "'9000A'", "customers_zip_code_check"),
        ("'seed'", "'made-up'", "customers_source_check"),
        ("33.96", "95", "customers_latitude_check"),
    ];
    for (from, to, constraint) in cases {
        let sql = VALID_CUSTOMER.replacen(from, to, 1);
        assert_ne!(sql, VALID_CUSTOMER, "{from} not found");
        assert_eq!(
            violated_constraint(&db.pool, &sql).await.as_deref(),
            Some(constraint),
            "{to}"
        );
    }
}

#[tokio::test]
async fn registry_and_ops_tables_refuse_inconsistent_rows() {
    let db = TestDb::new().await;
    let cases = [
        (
            "insert into registry.registered_models (name) values ('Bad Name')",
            "registered_models_name_check",
        ),
        (
            "insert into ops.job_runs (job_run_id, job_name, status, error) values (gen_random_uuid(), 'x', 'failed', 'boom')",
            "job_runs_finished_check",
        ),
        (
            "insert into ops.job_runs (job_run_id, job_name, status, finished_at) values (gen_random_uuid(), 'x', 'failed', now())",
            "job_runs_error_check",
        ),
        (
            "insert into ops.ingested_files (file_id, object_key, sha256, rows_total, rows_accepted, rows_rejected)
             values (gen_random_uuid(), 'k', repeat('a', 64), 10, 5, 4)",
            "ingested_files_counts_check",
        ),
        (
            "insert into registry.aliases (model_name, alias, version) values ('churn-classifier', 'champion', 1)",
            "aliases_model_name_version_fkey",
        ),
    ];
    for (sql, constraint) in cases {
        assert_eq!(
            violated_constraint(&db.pool, sql).await.as_deref(),
            Some(constraint),
            "{sql}"
        );
    }
}

#[tokio::test]
async fn a_customer_s_updated_at_marks_real_changes_and_ignores_rewrites_with_the_same_values() {
    let db = TestDb::new().await;
    sqlx::query(VALID_CUSTOMER).execute(&db.pool).await.unwrap();
    let updated_at = || async {
        sqlx::query_scalar!("select updated_at from churn.customers")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    assert_eq!(updated_at().await, None, "a new customer is not an update");
    // An upsert that writes the same values back is not a change.
    sqlx::query!(
        "update churn.customers set tenure_months = tenure_months, churn_label = churn_label",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(updated_at().await, None);
    sqlx::query!("update churn.customers set contract = 'One year'")
        .execute(&db.pool)
        .await
        .unwrap();
    let first = updated_at().await.expect("a change sets updated_at");
    sqlx::query!("update churn.customers set churn_label = false")
        .execute(&db.pool)
        .await
        .unwrap();
    let second = updated_at().await.expect("still set");
    assert!(
        second > first,
        "a later change moves it: {first} then {second}"
    );
}
