//! Writes invocations to the ops tables (migration V2) through `churn_store::dbt_results`: one row per
//! invocation, one per node, one per source, all in one transaction.

use churn_store::dbt_results::{self, NewFreshness, NewInvocation, NewNodeResult};
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
        let row = NewInvocation {
            invocation_id: invocation.invocation_id,
            job_run_id,
            command: invocation.command.as_str(),
            status: invocation.status.as_str(),
            exit_code: invocation.exit_code,
            dbt_version: &invocation.dbt_version,
            schema_version: &invocation.schema_version,
            started_at: invocation.started_at,
            generated_at: invocation.generated_at,
            elapsed_seconds: invocation.elapsed_seconds,
            invocation_command: invocation.invocation_command.as_deref(),
            args: &invocation.args,
        };
        dbt_results::insert_invocation(&mut tx, &row).await?;

        let nodes: Vec<NewNodeResult<'_>> = invocation
            .nodes
            .iter()
            .map(|n| NewNodeResult {
                unique_id: &n.unique_id,
                resource_type: n.resource_type.as_str(),
                status: n.status.as_str(),
                started_at: n.started_at,
                completed_at: n.completed_at,
                execution_seconds: n.execution_seconds,
                rows_affected: n.rows_affected,
                failures: n.failures,
                message: n.message.as_deref(),
                relation_name: n.relation_name.as_deref(),
                thread_id: n.thread_id.as_deref(),
                adapter_response: &n.adapter_response,
            })
            .collect();
        dbt_results::insert_node_results(&mut tx, invocation.invocation_id, &nodes).await?;

        let sources: Vec<NewFreshness<'_>> = invocation
            .freshness
            .iter()
            .map(|s| NewFreshness {
                unique_id: &s.unique_id,
                status: s.status.as_str(),
                max_loaded_at: s.max_loaded_at,
                snapshotted_at: s.snapshotted_at,
                age_seconds: s.age_seconds,
                criteria: &s.criteria,
                execution_seconds: s.execution_seconds,
                error: s.error.as_deref(),
            })
            .collect();
        dbt_results::insert_source_freshness(&mut tx, invocation.invocation_id, &sources).await?;
    }
    tx.commit().await?;
    Ok(())
}
