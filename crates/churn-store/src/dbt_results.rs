//! What the dbt runner records (migration V2): one row per invocation in `ops.dbt_invocations`, one per
//! node in `ops.dbt_node_results` and one per source in `ops.dbt_source_freshness`, the per-node rows as
//! one UNNEST insert per table; and the clean-up of the sessions a stopped dbt left on the server.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Error;

/// One dbt command's invocation, as its artifact describes it. Statuses and commands are dbt's own
/// words (`success`, `source freshness`, …), which the table's checks list.
#[derive(Debug, Clone, Copy)]
pub struct NewInvocation<'a> {
    pub invocation_id: Uuid,
    /// The scheduler's `ops.job_runs` row, when the scheduler ran dbt.
    pub job_run_id: Option<Uuid>,
    pub command: &'a str,
    pub status: &'a str,
    pub exit_code: Option<i32>,
    pub dbt_version: &'a str,
    pub schema_version: &'a str,
    pub started_at: Option<DateTime<Utc>>,
    pub generated_at: DateTime<Utc>,
    pub elapsed_seconds: f64,
    pub invocation_command: Option<&'a str>,
    pub args: &'a Map<String, Value>,
}

/// One node's result in an invocation.
#[derive(Debug, Clone, Copy)]
pub struct NewNodeResult<'a> {
    pub unique_id: &'a str,
    pub resource_type: &'a str,
    pub status: &'a str,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub execution_seconds: f64,
    pub rows_affected: Option<i64>,
    pub failures: Option<i64>,
    pub message: Option<&'a str>,
    pub relation_name: Option<&'a str>,
    pub thread_id: Option<&'a str>,
    pub adapter_response: &'a Map<String, Value>,
}

/// One source's freshness in an invocation.
#[derive(Debug, Clone, Copy)]
pub struct NewFreshness<'a> {
    pub unique_id: &'a str,
    pub status: &'a str,
    pub max_loaded_at: Option<DateTime<Utc>>,
    pub snapshotted_at: Option<DateTime<Utc>>,
    pub age_seconds: Option<f64>,
    pub criteria: &'a Map<String, Value>,
    pub execution_seconds: Option<f64>,
    pub error: Option<&'a str>,
}

/// Records an invocation, inside the caller's transaction.
pub async fn insert_invocation(
    conn: &mut PgConnection,
    invocation: &NewInvocation<'_>,
) -> Result<(), Error> {
    sqlx::query!(
        "insert into ops.dbt_invocations (invocation_id, job_run_id, command, status, exit_code,
             dbt_version, schema_version, started_at, generated_at, elapsed_seconds,
             invocation_command, args)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        invocation.invocation_id,
        invocation.job_run_id,
        invocation.command,
        invocation.status,
        invocation.exit_code,
        invocation.dbt_version,
        invocation.schema_version,
        invocation.started_at,
        invocation.generated_at,
        invocation.elapsed_seconds,
        invocation.invocation_command,
        Value::Object(invocation.args.clone()),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records an invocation's node results in one statement, inside the caller's transaction.
///
/// The macros type arrays by their element type without its nullability, so arrays holding nulls go in
/// with `as _` (checked by PostgreSQL against the `unnest` casts instead).
pub async fn insert_node_results(
    conn: &mut PgConnection,
    invocation_id: Uuid,
    nodes: &[NewNodeResult<'_>],
) -> Result<(), Error> {
    if nodes.is_empty() {
        return Ok(());
    }
    let owned = |value: Option<&str>| value.map(str::to_owned);
    let unique_ids: Vec<String> = nodes.iter().map(|n| n.unique_id.to_owned()).collect();
    let resource_types: Vec<String> = nodes.iter().map(|n| n.resource_type.to_owned()).collect();
    let statuses: Vec<String> = nodes.iter().map(|n| n.status.to_owned()).collect();
    let started: Vec<Option<DateTime<Utc>>> = nodes.iter().map(|n| n.started_at).collect();
    let completed: Vec<Option<DateTime<Utc>>> = nodes.iter().map(|n| n.completed_at).collect();
    let seconds: Vec<f64> = nodes.iter().map(|n| n.execution_seconds).collect();
    let rows: Vec<Option<i64>> = nodes.iter().map(|n| n.rows_affected).collect();
    let failures: Vec<Option<i64>> = nodes.iter().map(|n| n.failures).collect();
    let messages: Vec<Option<String>> = nodes.iter().map(|n| owned(n.message)).collect();
    let relations: Vec<Option<String>> = nodes.iter().map(|n| owned(n.relation_name)).collect();
    let threads: Vec<Option<String>> = nodes.iter().map(|n| owned(n.thread_id)).collect();
    let responses: Vec<String> = nodes
        .iter()
        .map(|n| Value::Object(n.adapter_response.clone()).to_string())
        .collect();
    sqlx::query!(
        "insert into ops.dbt_node_results (invocation_id, unique_id, resource_type, status,
             started_at, completed_at, execution_seconds, rows_affected, failures, message,
             relation_name, thread_id, adapter_response)
         select $1, n.unique_id, n.resource_type, n.status, n.started_at, n.completed_at,
                n.execution_seconds, n.rows_affected, n.failures, n.message, n.relation_name,
                n.thread_id, n.adapter_response::jsonb
         from unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[],
                     $7::float8[], $8::int8[], $9::int8[], $10::text[], $11::text[], $12::text[],
                     $13::text[])
             as n (unique_id, resource_type, status, started_at, completed_at, execution_seconds,
                   rows_affected, failures, message, relation_name, thread_id, adapter_response)",
        invocation_id,
        &unique_ids,
        &resource_types,
        &statuses,
        &started as _,
        &completed as _,
        &seconds,
        &rows as _,
        &failures as _,
        &messages as _,
        &relations as _,
        &threads as _,
        &responses,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records an invocation's source freshness results in one statement, inside the caller's transaction.
pub async fn insert_source_freshness(
    conn: &mut PgConnection,
    invocation_id: Uuid,
    sources: &[NewFreshness<'_>],
) -> Result<(), Error> {
    if sources.is_empty() {
        return Ok(());
    }
    let unique_ids: Vec<String> = sources.iter().map(|s| s.unique_id.to_owned()).collect();
    let statuses: Vec<String> = sources.iter().map(|s| s.status.to_owned()).collect();
    let loaded: Vec<Option<DateTime<Utc>>> = sources.iter().map(|s| s.max_loaded_at).collect();
    let snapshotted: Vec<Option<DateTime<Utc>>> =
        sources.iter().map(|s| s.snapshotted_at).collect();
    let ages: Vec<Option<f64>> = sources.iter().map(|s| s.age_seconds).collect();
    let criteria: Vec<String> = sources
        .iter()
        .map(|s| Value::Object(s.criteria.clone()).to_string())
        .collect();
    let seconds: Vec<Option<f64>> = sources.iter().map(|s| s.execution_seconds).collect();
    let errors: Vec<Option<String>> = sources.iter().map(|s| s.error.map(str::to_owned)).collect();
    sqlx::query!(
        "insert into ops.dbt_source_freshness (invocation_id, unique_id, status, max_loaded_at,
             snapshotted_at, age_seconds, criteria, execution_seconds, error)
         select $1, s.unique_id, s.status, s.max_loaded_at, s.snapshotted_at, s.age_seconds,
                s.criteria::jsonb, s.execution_seconds, s.error
         from unnest($2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::float8[],
                     $7::text[], $8::float8[], $9::text[])
             as s (unique_id, status, max_loaded_at, snapshotted_at, age_seconds, criteria,
                   execution_seconds, error)",
        invocation_id,
        &unique_ids,
        &statuses,
        &loaded as _,
        &snapshotted as _,
        &ages as _,
        &criteria,
        &seconds as _,
        &errors as _,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends every other session named `application_name` (a killed dbt cannot cancel its own queries);
/// returns how many were ended.
pub async fn terminate_sessions(
    conn: &mut PgConnection,
    application_name: &str,
) -> Result<i64, Error> {
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "ended!" from (
               select pg_terminate_backend(pid) from pg_stat_activity
               where application_name = $1 and pid <> pg_backend_pid()
           ) as ended"#,
        application_name,
    )
    .fetch_one(conn)
    .await?)
}
