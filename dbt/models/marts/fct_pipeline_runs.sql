-- One row per pipeline run: every scheduler job run, and every dbt invocation recorded without one (dbt
-- run by hand through the same library). dbt runs carry their invocations' totals: elapsed time, nodes,
-- failed nodes by name, freshness errors. The build that produces this table records its own results
-- after it finishes, so they appear at the next build.
with

job_runs as (

    select * from {{ ref('stg_ops__job_runs') }}

),

invocations as (

    select * from {{ ref('stg_ops__dbt_invocations') }}

),

node_results as (

    select * from {{ ref('stg_ops__dbt_node_results') }}

),

freshness as (

    select * from {{ ref('stg_ops__dbt_source_freshness') }}

),

node_totals as (

    select
        invocation_id,
        count(*) as nodes,
        count(*) filter (where resource_type = 'model') as models,
        count(*) filter (where resource_type in ('test', 'unit_test')) as tests,
        count(*) filter (where node_status in ('error', 'fail', 'runtime error')) as failed_nodes,
        string_agg(node_unique_id, ', ' order by node_unique_id)
            filter (where node_status in ('error', 'fail', 'runtime error')) as failed_node_ids,
        sum(rows_affected) filter (where resource_type in ('model', 'snapshot')) as rows_affected

    from node_results
    group by invocation_id

),

freshness_totals as (

    select
        invocation_id,
        count(*) filter (where freshness_status in ('error', 'runtime error')) as freshness_errors

    from freshness
    group by invocation_id

),

invocation_totals as (

    select
        invocations.invocation_id,
        invocations.job_run_id,
        invocations.elapsed_seconds,
        invocations.invocation_status,
        coalesce(node_totals.nodes, 0) as nodes,
        coalesce(node_totals.models, 0) as models,
        coalesce(node_totals.tests, 0) as tests,
        coalesce(node_totals.failed_nodes, 0) as failed_nodes,
        node_totals.failed_node_ids,
        node_totals.rows_affected,
        coalesce(freshness_totals.freshness_errors, 0) as freshness_errors

    from invocations
    left join node_totals on node_totals.invocation_id = invocations.invocation_id
    left join freshness_totals on freshness_totals.invocation_id = invocations.invocation_id

),

dbt_per_job_run as (

    select
        job_run_id,
        count(*) as dbt_invocations,
        sum(elapsed_seconds) as dbt_elapsed_seconds,
        sum(nodes) as dbt_nodes,
        sum(models) as dbt_models,
        sum(tests) as dbt_tests,
        sum(failed_nodes) as dbt_failed_nodes,
        string_agg(failed_node_ids, ', ') as dbt_failed_node_ids,
        sum(freshness_errors) as dbt_freshness_errors

    from invocation_totals
    where job_run_id is not null
    group by job_run_id

),

scheduler_runs as (

    select
        {{ surrogate_key(["'job'", 'job_runs.job_run_id']) }} as pipeline_run_key,
        'scheduler' as run_source,
        job_runs.job_run_id,
        cast(null as uuid) as dbt_invocation_id,
        job_runs.job_name,
        job_runs.job_trigger,
        job_runs.job_status as run_status,
        job_runs.started_at,
        job_runs.finished_at,
        job_runs.duration_seconds,
        job_runs.rows_affected,
        job_runs.error_message,
        coalesce(dbt_per_job_run.dbt_invocations, 0) as dbt_invocations,
        dbt_per_job_run.dbt_elapsed_seconds,
        dbt_per_job_run.dbt_nodes,
        dbt_per_job_run.dbt_models,
        dbt_per_job_run.dbt_tests,
        dbt_per_job_run.dbt_failed_nodes,
        dbt_per_job_run.dbt_failed_node_ids,
        dbt_per_job_run.dbt_freshness_errors

    from job_runs
    left join dbt_per_job_run on dbt_per_job_run.job_run_id = job_runs.job_run_id

),

manual_dbt_runs as (

    select
        {{ surrogate_key(["'dbt'", 'invocations.invocation_id']) }} as pipeline_run_key,
        'dbt' as run_source,
        cast(null as uuid) as job_run_id,
        invocations.invocation_id as dbt_invocation_id,
        'dbt ' || invocations.dbt_command as job_name,
        'manual' as job_trigger,
        case when invocations.invocation_status = 'success' then 'succeeded' else 'failed' end as run_status,
        coalesce(invocations.started_at, invocations.generated_at - make_interval(secs => invocations.elapsed_seconds)) as started_at,
        invocations.generated_at as finished_at,
        invocations.elapsed_seconds as duration_seconds,
        totals.rows_affected,
        totals.failed_node_ids as error_message,
        1 as dbt_invocations,
        invocations.elapsed_seconds as dbt_elapsed_seconds,
        totals.nodes as dbt_nodes,
        totals.models as dbt_models,
        totals.tests as dbt_tests,
        totals.failed_nodes as dbt_failed_nodes,
        totals.failed_node_ids as dbt_failed_node_ids,
        totals.freshness_errors as dbt_freshness_errors

    from invocations
    inner join invocation_totals as totals on totals.invocation_id = invocations.invocation_id
    where invocations.job_run_id is null

),

unioned as (

    select * from scheduler_runs
    union all
    select * from manual_dbt_runs

),

final as (

    select
        *,
        {{ date_key('started_at') }} as started_date_key

    from unioned

)

select * from final
