-- dbt results: every dbt invocation the scheduler (or a person, through the same library) ran, each node's
-- result in it, and each source's freshness, parsed from dbt's run_results.json (schema v6) and
-- sources.json (schema v3). Status vocabularies are dbt-core's own (NodeStatus, FreshnessStatus), so the
-- rows read like the artifacts they come from.

create table ops.dbt_invocations (
    invocation_id      uuid primary key,                  -- dbt's invocation_id
    job_run_id         uuid,                              -- the scheduler's run, when the scheduler ran dbt
    command            text not null,                     -- build, source freshness, docs generate, …
    status             text not null,
    exit_code          integer,
    dbt_version        text not null,
    schema_version     text not null,                     -- the artifact's dbt_schema_version URL
    started_at         timestamptz,                       -- metadata.invocation_started_at
    generated_at       timestamptz not null,              -- metadata.generated_at
    elapsed_seconds    double precision not null,
    invocation_command text,                              -- args.invocation_command, e.g. "dbt build …"
    args               jsonb not null default '{}',       -- dbt's args (secret vars scrubbed by dbt)
    recorded_at        timestamptz not null default now(),
    constraint dbt_invocations_job_run_fkey foreign key (job_run_id)
        references ops.job_runs (job_run_id) on delete set null,
    constraint dbt_invocations_command_check check (command in (
        'build', 'run', 'test', 'snapshot', 'seed', 'source freshness', 'docs generate', 'compile',
        'run-operation', 'retry', 'clone', 'show', 'list', 'parse')),
    -- success: exit code 0 (warnings allowed); failure: dbt ran and some node failed (exit code 1);
    -- error: dbt itself failed (exit code 2) but still wrote its results.
    constraint dbt_invocations_status_check check (status in ('success', 'failure', 'error')),
    constraint dbt_invocations_elapsed_check check (elapsed_seconds >= 0),
    constraint dbt_invocations_args_check check (jsonb_typeof(args) = 'object')
);
create index dbt_invocations_job_run_idx on ops.dbt_invocations (job_run_id);
create index dbt_invocations_generated_idx on ops.dbt_invocations (generated_at desc);

create table ops.dbt_node_results (
    invocation_id     uuid not null,
    unique_id         text not null,                      -- e.g. model.churn.fct_churn_prediction
    resource_type     text not null,                      -- the unique id's first part
    status            text not null,
    started_at        timestamptz,                        -- the "execute" timing, when there was one
    completed_at      timestamptz,
    execution_seconds double precision not null,
    rows_affected     bigint,                             -- adapter_response.rows_affected
    failures          bigint,                             -- tests: rows returned
    message           text,
    relation_name     text,                               -- "database"."schema"."table"
    thread_id         text,
    adapter_response  jsonb not null default '{}',
    constraint dbt_node_results_pkey primary key (invocation_id, unique_id),
    constraint dbt_node_results_invocation_fkey foreign key (invocation_id)
        references ops.dbt_invocations (invocation_id) on delete cascade,
    constraint dbt_node_results_resource_type_check check (resource_type in (
        'model', 'test', 'unit_test', 'snapshot', 'seed', 'source', 'analysis', 'operation',
        'sql_operation', 'function', 'exposure', 'metric', 'semantic_model', 'saved_query')),
    -- dbt-core's NodeStatus: RunStatus for models, snapshots and seeds, TestStatus for tests.
    constraint dbt_node_results_status_check check (status in (
        'success', 'error', 'fail', 'warn', 'skipped', 'partial success', 'pass', 'runtime error', 'no-op')),
    constraint dbt_node_results_timing_check check (
        started_at is null or completed_at is null or completed_at >= started_at),
    constraint dbt_node_results_numbers_check check (
        execution_seconds >= 0
        and (rows_affected is null or rows_affected >= 0)
        and (failures is null or failures >= 0)),
    constraint dbt_node_results_adapter_response_check check (jsonb_typeof(adapter_response) = 'object')
);
create index dbt_node_results_unique_id_idx on ops.dbt_node_results (unique_id, started_at);
-- what failed, quickly: the console and the job's error name these
create index dbt_node_results_failed_idx on ops.dbt_node_results (invocation_id)
    where status in ('error', 'fail', 'runtime error');

create table ops.dbt_source_freshness (
    invocation_id     uuid not null,
    unique_id         text not null,                      -- e.g. source.churn.churn.customers
    status            text not null,
    max_loaded_at     timestamptz,
    snapshotted_at    timestamptz,
    age_seconds       double precision,                   -- max_loaded_at_time_ago_in_s
    criteria          jsonb not null default '{}',        -- warn_after, error_after, filter
    execution_seconds double precision,
    error             text,                               -- the runtime error, when there was one
    constraint dbt_source_freshness_pkey primary key (invocation_id, unique_id),
    constraint dbt_source_freshness_invocation_fkey foreign key (invocation_id)
        references ops.dbt_invocations (invocation_id) on delete cascade,
    -- dbt-core's FreshnessStatus
    constraint dbt_source_freshness_status_check check (status in ('pass', 'warn', 'error', 'runtime error')),
    -- a runtime error measured nothing; any other status measured the newest row
    constraint dbt_source_freshness_measured_check check (
        (status = 'runtime error') = (max_loaded_at is null and snapshotted_at is null and age_seconds is null)),
    -- the age is not checked: a clock ahead of the database's makes it negative, and that is worth seeing
    constraint dbt_source_freshness_execution_check check (execution_seconds is null or execution_seconds >= 0),
    constraint dbt_source_freshness_criteria_check check (jsonb_typeof(criteria) = 'object')
);
create index dbt_source_freshness_unique_id_idx on ops.dbt_source_freshness (unique_id, snapshotted_at);
