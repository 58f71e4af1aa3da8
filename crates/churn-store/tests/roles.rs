//! The service roles of migration V11, each connected as itself after migrating a fresh database: it can
//! run its job's statements and is refused (SQLSTATE 42501) outside them; and role passwords reach the
//! server only as the SCRAM verifier PostgreSQL itself would compute.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use churn_config::{DATABASE_ROLES, RolePassword, Secret};
use churn_core::{Customer, CustomerId};
use churn_store::roles::scram_verifier;
use churn_testkit::TestDb;
use sqlx::{PgPool, SqlSafeStr};
use uuid::Uuid;

/// PostgreSQL's "insufficient privilege".
const DENIED: Option<&str> = Some("42501");

/// The SQLSTATE a statement fails with, or None when it succeeds.
async fn sqlstate(pool: &PgPool, sql: impl SqlSafeStr) -> Option<String> {
    match sqlx::raw_sql(sql).execute(pool).await {
        Ok(_) => None,
        Err(e) => Some(
            e.as_database_error()
                .and_then(|d| d.code())
                .map_or_else(|| e.to_string(), |c| c.into_owned()),
        ),
    }
}

/// Asserts each statement succeeds as the pool's role.
async fn allowed(pool: &PgPool, role: &str, statements: &[&'static str]) {
    for sql in statements {
        assert_eq!(sqlstate(pool, *sql).await, None, "{role} may run: {sql}");
    }
}

/// Asserts each statement is refused for want of a privilege.
async fn refused(pool: &PgPool, role: &str, statements: &[&'static str]) {
    for sql in statements {
        assert_eq!(
            sqlstate(pool, *sql).await.as_deref(),
            DENIED,
            "{role} must be refused: {sql}"
        );
    }
}

fn customer_id() -> CustomerId {
    CustomerId::from_uuid(Uuid::from_bytes(ulid::Ulid::generate().to_bytes()))
}

fn seed() -> Vec<Customer> {
    churn_core::read_customers(&churn_testkit::seed_data_path()).unwrap()
}

#[tokio::test]
async fn the_classifier_reads_the_registry_and_nothing_else() {
    let db = TestDb::new().await;
    let classifier = db.pool_as("churn_classifier").await;
    allowed(
        &classifier,
        "churn_classifier",
        &[
            "select * from registry.registered_models",
            "select * from registry.model_versions",
            "select * from registry.aliases",
            "listen registry_events",
        ],
    )
    .await;
    refused(
        &classifier,
        "churn_classifier",
        &[
            "select * from churn.customers",
            "insert into churn.customers default values",
            "update registry.aliases set version = version",
            "insert into registry.model_versions default values",
            "delete from registry.model_versions",
            "select * from ops.job_runs",
            "select * from monitoring.model_metrics",
            "create table registry.extra (k int)",
        ],
    )
    .await;
}

#[tokio::test]
async fn the_synthesizer_reads_the_registry_but_cannot_move_an_alias_or_reach_the_warehouse() {
    let db = TestDb::new().await;
    let synthesizer = db.pool_as("churn_synthesizer").await;
    allowed(
        &synthesizer,
        "churn_synthesizer",
        &[
            "select * from registry.model_versions",
            // register() touches its model's row; the registration itself is tested with the real
            // registry code in churn-registry's tests/roles.rs.
            "update registry.registered_models set updated_at = now() where name = 'synthesizer'",
        ],
    )
    .await;
    refused(
        &synthesizer,
        "churn_synthesizer",
        &[
            "update registry.aliases set version = version",
            "delete from registry.aliases",
            "delete from registry.model_versions",
            "update registry.model_versions set description = ''",
            "update registry.registered_models set description = ''",
            "insert into registry.promotion_decisions default values",
            "select * from churn.customers",
            "insert into churn.customers default values",
            "select * from ops.job_runs",
            "select * from monitoring.model_metrics",
        ],
    )
    .await;
}

#[tokio::test]
async fn the_scheduler_writes_the_warehouse_ops_and_monitoring_but_cannot_change_the_schema() {
    let db = TestDb::new().await;
    let scheduler = db.pool_as("churn_scheduler").await;
    // The ingestion's real writes: a new customer by COPY, then the same business id again, which
    // stages the batch in a temporary table and upserts it.
    let seed = seed();
    for _ in 0..2 {
        let mut tx = scheduler.begin().await.unwrap();
        churn_store::warehouse::upsert_ingested(&mut tx, &[(customer_id(), &seed[0], Some("R-1"))])
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let run = Uuid::new_v4();
    churn_store::ops::insert_run(
        &scheduler,
        run,
        "generate",
        churn_store::ops::Trigger::Manual,
        "test",
    )
    .await
    .unwrap();
    assert!(
        churn_store::ops::get_run(&scheduler, run)
            .await
            .unwrap()
            .is_some()
    );
    allowed(
        &scheduler,
        "churn_scheduler",
        &[
            "select count(*) from churn.customers",
            "update churn.customers set churn_label = churn_label",
            "delete from monitoring.calibration",
            "select * from registry.aliases",
            "delete from registry.aliases where false",
        ],
    )
    .await;
    refused(
        &scheduler,
        "churn_scheduler",
        &[
            "create table churn.extra (k int)",
            "create table ops.extra (k int)",
            "drop table churn.customers",
            "alter table ops.job_runs add column extra int",
            "truncate churn.classified",
            "create table marts.extra (k int)",
            "select * from marts.nothing_here_but_the_schema_is_closed",
            "create schema extra",
        ],
    )
    .await;
}

#[tokio::test]
async fn the_dbt_role_owns_the_marts_and_reads_its_sources_only() {
    let db = TestDb::new().await;
    let dbt = db.pool_as("churn_dbt").await;
    // What a dbt build does: views over the sources in staging, tables in marts (replaced on a full
    // build), snapshots; and the read-only role reads what it made.
    allowed(
        &dbt,
        "churn_dbt",
        &[
            "create view staging.stg_probe as
                 select c.customer_id from churn.customers as c
                 cross join (select count(*) from registry.model_versions) as v
                 cross join (select count(*) from ops.job_runs) as o
                 cross join (select count(*) from monitoring.model_metrics) as m",
            "create table marts.fct_probe as select count(*) as n from staging.stg_probe",
            "drop table marts.fct_probe",
            "create table marts.fct_probe as select 1 as n",
            "alter table marts.fct_probe rename to fct_probe__dbt_backup",
            "create table marts.fct_probe as select 2 as n",
            "drop table marts.fct_probe__dbt_backup",
            "create temporary table probe_tmp as select 1 as n",
            "create table snapshots.snap_probe as select 1 as n",
        ],
    )
    .await;
    let readonly = db.pool_as(churn_store::READONLY_ROLE).await;
    let n: i32 = sqlx::query_scalar("select n from marts.fct_probe")
        .fetch_one(&readonly)
        .await
        .unwrap();
    assert_eq!(n, 2, "the read-only role reads a mart table dbt made");
    refused(
        &dbt,
        "churn_dbt",
        &[
            "insert into churn.customers default values",
            "update registry.aliases set version = version",
            "delete from ops.job_runs",
            "create table churn.extra (k int)",
            "create table monitoring.extra (k int)",
        ],
    )
    .await;
}

#[tokio::test]
async fn the_readonly_role_is_refused_writes_even_in_a_read_write_transaction() {
    let db = TestDb::new().await;
    sqlx::raw_sql("create table marts.dim_probe (k int)")
        .execute(&db.pool)
        .await
        .unwrap();
    let readonly = db.pool_as(churn_store::READONLY_ROLE).await;
    // Its default is read-only transactions; the grants refuse the write even when it asks for more.
    for sql in [
        "begin read write; insert into marts.dim_probe values (1); commit",
        "begin read write; insert into churn.customers default values; commit",
        "begin read write; delete from ops.job_runs; commit",
    ] {
        let mut conn = readonly.acquire().await.unwrap();
        let code = match sqlx::raw_sql(sql).execute(&mut *conn).await {
            Ok(_) => None,
            Err(e) => e
                .as_database_error()
                .and_then(|d| d.code())
                .map(|c| c.into_owned()),
        };
        assert_eq!(
            code.as_deref(),
            DENIED,
            "churn_readonly must be refused: {sql}"
        );
        // The failed transaction is left open on this connection: close it before it goes back.
        conn.close_on_drop();
    }
}

/// The (iterations, salt) of a stored `SCRAM-SHA-256$<iterations>:<salt>$…` verifier.
fn iterations_and_salt(verifier: &str) -> (u32, Vec<u8>) {
    let rest = verifier.strip_prefix("SCRAM-SHA-256$").expect(verifier);
    let (iterations, rest) = rest.split_once(':').unwrap();
    let (salt, _) = rest.split_once('$').unwrap();
    let salt = base64::engine::general_purpose::STANDARD
        .decode(salt)
        .unwrap();
    (iterations.parse().unwrap(), salt)
}

#[tokio::test]
async fn the_verifier_computed_here_is_the_one_postgresql_computes_for_the_same_salt() {
    let db = TestDb::new().await;
    // A role of this test's own, its password hashed by the server (the one place a password is sent,
    // in a test), to compare with: SASLprep applies to the non-ASCII one.
    for password in ["pencil and paper", "pässwörd\u{00A0}mit Leerzeichen"] {
        assert!(!password.contains('\''), "spliced into a literal below");
        let role = format!("churn_scram_probe_{}", Uuid::new_v4().simple());
        let mut conn = db.pool.acquire().await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "set password_encryption = 'scram-sha-256'; create role {role} password '{password}'"
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
        let stored: String =
            sqlx::query_scalar("select rolpassword from pg_authid where rolname = $1")
                .bind(&role)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("drop role {role}")))
            .execute(&mut *conn)
            .await
            .unwrap();
        let (iterations, salt) = iterations_and_salt(&stored);
        assert_eq!(scram_verifier(password, &salt, iterations), stored);
    }
}

#[tokio::test]
async fn role_passwords_are_stored_as_scram_verifiers_never_as_the_password() {
    let db = TestDb::new().await;
    let password = "it's a \"quoted\" pass; drop role x; --";
    let classifier = DATABASE_ROLES
        .into_iter()
        .find(|r| r.name == "churn_classifier")
        .unwrap();
    churn_store::set_role_passwords(
        &db.url,
        &[RolePassword {
            role: classifier,
            password: Secret::new(password),
        }],
    )
    .await
    .unwrap();
    let stored: String = sqlx::query_scalar("select rolpassword from pg_authid where rolname = $1")
        .bind(classifier.name)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(!stored.contains("quoted"), "{stored}");
    // The stored verifier is the password's, for the salt it carries.
    let (iterations, salt) = iterations_and_salt(&stored);
    assert_eq!(iterations, churn_store::roles::SCRAM_ITERATIONS);
    assert_eq!(scram_verifier(password, &salt, iterations), stored);
}

#[tokio::test]
async fn a_password_for_a_role_that_does_not_exist_names_the_role_and_its_variable() {
    let db = TestDb::empty().await;
    let err = churn_store::set_role_passwords(
        &db.url,
        &[RolePassword {
            role: churn_config::DatabaseRole {
                name: "churn_no_such_role",
                password_var: "NO_SUCH_DB_PASSWORD",
            },
            password: Secret::new("a password of some length"),
        }],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("NO_SUCH_DB_PASSWORD"), "{err}");
    assert!(err.contains("churn_no_such_role"), "{err}");
    assert!(!err.contains("a password of some length"), "{err}");
}
