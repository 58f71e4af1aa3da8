//! Writes invocations to the ops tables (migration V2): one row per invocation in `ops.dbt_invocations`,
//! one per node in `ops.dbt_node_results`, one per source in `ops.dbt_source_freshness`, all in one
//! transaction, the per-node rows as one UNNEST insert per table.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::Error;
use crate::results::Invocation;

/// Records `invocations` (e.g. a run's freshness check and build) in one transaction. `job_run_id` is the
/// scheduler's `ops.job_runs` row, when the scheduler ran dbt.
pub async fn record(
    pool: &PgPool,
    job_run_id: Option<Uuid>,
    invocations: &[&Invocation],
) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    for invocation in invocations {
        sqlx::query(
            "insert into ops.dbt_invocations (invocation_id, job_run_id, command, status, exit_code,
                 dbt_version, schema_version, started_at, generated_at, elapsed_seconds,
                 invocation_command, args)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(invocation.invocation_id)
        .bind(job_run_id)
        .bind(invocation.command.as_str())
        .bind(invocation.status.as_str())
        .bind(invocation.exit_code)
        .bind(&invocation.dbt_version)
        .bind(&invocation.schema_version)
        .bind(invocation.started_at)
        .bind(invocation.generated_at)
        .bind(invocation.elapsed_seconds)
        .bind(&invocation.invocation_command)
        .bind(sqlx::types::Json(&invocation.args))
        .execute(&mut *tx)
        .await?;

        if !invocation.nodes.is_empty() {
            let nodes = &invocation.nodes;
            sqlx::query(
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
            )
            .bind(invocation.invocation_id)
            .bind(nodes.iter().map(|n| n.unique_id.clone()).collect::<Vec<_>>())
            .bind(nodes.iter().map(|n| n.resource_type.as_str()).collect::<Vec<_>>())
            .bind(nodes.iter().map(|n| n.status.as_str()).collect::<Vec<_>>())
            .bind(nodes.iter().map(|n| n.started_at).collect::<Vec<Option<DateTime<Utc>>>>())
            .bind(nodes.iter().map(|n| n.completed_at).collect::<Vec<Option<DateTime<Utc>>>>())
            .bind(nodes.iter().map(|n| n.execution_seconds).collect::<Vec<_>>())
            .bind(nodes.iter().map(|n| n.rows_affected).collect::<Vec<_>>())
            .bind(nodes.iter().map(|n| n.failures).collect::<Vec<_>>())
            .bind(nodes.iter().map(|n| n.message.clone()).collect::<Vec<_>>())
            .bind(nodes.iter().map(|n| n.relation_name.clone()).collect::<Vec<_>>())
            .bind(nodes.iter().map(|n| n.thread_id.clone()).collect::<Vec<_>>())
            .bind(
                nodes
                    .iter()
                    .map(|n| serde_json::Value::Object(n.adapter_response.clone()).to_string())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
        }

        if !invocation.freshness.is_empty() {
            let sources = &invocation.freshness;
            sqlx::query(
                "insert into ops.dbt_source_freshness (invocation_id, unique_id, status, max_loaded_at,
                     snapshotted_at, age_seconds, criteria, execution_seconds, error)
                 select $1, s.unique_id, s.status, s.max_loaded_at, s.snapshotted_at, s.age_seconds,
                        s.criteria::jsonb, s.execution_seconds, s.error
                 from unnest($2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::float8[],
                             $7::text[], $8::float8[], $9::text[])
                     as s (unique_id, status, max_loaded_at, snapshotted_at, age_seconds, criteria,
                           execution_seconds, error)",
            )
            .bind(invocation.invocation_id)
            .bind(sources.iter().map(|s| s.unique_id.clone()).collect::<Vec<_>>())
            .bind(sources.iter().map(|s| s.status.as_str()).collect::<Vec<_>>())
            .bind(sources.iter().map(|s| s.max_loaded_at).collect::<Vec<_>>())
            .bind(sources.iter().map(|s| s.snapshotted_at).collect::<Vec<_>>())
            .bind(sources.iter().map(|s| s.age_seconds).collect::<Vec<_>>())
            .bind(
                sources
                    .iter()
                    .map(|s| serde_json::Value::Object(s.criteria.clone()).to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(sources.iter().map(|s| s.execution_seconds).collect::<Vec<_>>())
            .bind(sources.iter().map(|s| s.error.clone()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
