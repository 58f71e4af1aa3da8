-- The read-only role the BI tools (Grafana, Metabase) connect as, and the monitoring views they read.
--
-- churn_readonly may read the dbt marts and the monitoring schema, nothing else: not the raw warehouse
-- (churn), not the registry (artifact locations, run parameters), not the raw ops tables (rejected
-- records keep the refused lines verbatim). What dashboards need from those tables is exposed through the
-- views below, which name their columns, so nothing sensitive leaks when a table gains a column.
-- The password is not in this file: services and `churnctl migrate` set it from READONLY_DB_PASSWORD
-- (without one the role cannot log in where the server asks for passwords).

-- Roles belong to the server, not the database: another database on the same server may have created it,
-- even at this moment (a concurrent creation fails with unique_violation rather than duplicate_object).
do $$
begin
    create role churn_readonly login noinherit connection limit 30;
    -- A BI tool must never write, and a runaway dashboard query must not hold the warehouse.
    alter role churn_readonly set default_transaction_read_only = on;
    alter role churn_readonly set statement_timeout = '60s';
exception
    when duplicate_object or unique_violation then null;
end
$$;

do $$
begin
    execute format('grant connect on database %I to churn_readonly', current_database());
end
$$;

-- dbt creates its schemas when it first builds; the default privileges below need marts to exist now.
create schema if not exists marts;

-- ---------------------------------------------------------------------------------------------------------
-- monitoring views: what the dashboards show of the other schemas
-- ---------------------------------------------------------------------------------------------------------

-- Every customer's arrival and label, without the customer's attributes: arrivals per minute, freshness.
create view monitoring.customer_arrivals as
select
    customer_id,
    source,
    inserted_at,
    labelled_at,
    churn_label as actual_churn_label
from churn.customers;

-- Every prediction (champion and shadow-scored challenger) with the customer's actual label, when known.
create view monitoring.predictions as
select
    classified.classification_id,
    classified.customer_id,
    classified.model_name,
    classified.model_version,
    classified.churn_probability,
    classified.predicted_churn_label,
    classified.threshold,
    classified.classified_at,
    customers.churn_label as actual_churn_label
from churn.classified
join churn.customers on customers.customer_id = classified.customer_id;

-- Registered versions with the metrics recorded at registration: cross-validation on the training rows
-- (cv_*) and the held-out test rows (test_*). Artifact locations and lineage stay in the registry.
create view monitoring.model_versions as
select
    model_name,
    version as model_version,
    flavor,
    description,
    parent_version,
    created_at,
    cast(metrics ->> 'threshold' as double precision) as decision_threshold,
    cast(metrics ->> 'cv_roc_auc' as double precision) as cv_roc_auc,
    cast(metrics ->> 'cv_f1' as double precision) as cv_f1,
    cast(metrics ->> 'cv_log_loss' as double precision) as cv_log_loss,
    cast(metrics ->> 'test_roc_auc' as double precision) as test_roc_auc,
    cast(metrics ->> 'test_f1' as double precision) as test_f1,
    cast(metrics ->> 'test_log_loss' as double precision) as test_log_loss,
    cast(lineage ->> 'training_rows' as bigint) as training_rows
from registry.model_versions;

-- Permutation importance of each customer field, per version (ROC AUC lost when the field is shuffled).
create view monitoring.feature_importance as
select
    versions.model_name,
    versions.version as model_version,
    importance ->> 'field' as feature,
    cast(importance ->> 'importance' as double precision) as importance
from registry.model_versions as versions
cross join lateral jsonb_array_elements(
    case when jsonb_typeof(versions.metrics -> 'feature_importance') = 'array'
         then versions.metrics -> 'feature_importance' else '[]'::jsonb end) as importance;

-- Which version each alias (champion, challenger) names now, and since when.
create view monitoring.aliases as
select model_name, alias, version as model_version, updated_at
from registry.aliases;

-- Every promotion decision with its evidence (scores, margin, the reason).
create view monitoring.promotion_decisions as
select
    decision_id,
    model_name,
    candidate_version,
    champion_version,
    metric,
    candidate_score,
    champion_score,
    margin,
    promoted,
    reason,
    evidence,
    decided_at
from registry.promotion_decisions;

-- What started each retrain (schedule, drift, a live AUC drop, new labels) and its evidence.
create view monitoring.retrain_triggers as
select trigger_id, job_run_id, reason, evidence, triggered_at
from ops.retrain_triggers;

-- Every scheduler job run: outcome, duration, rows, error.
create view monitoring.job_runs as
select
    job_run_id,
    job_name,
    trigger,
    status,
    attempt,
    started_at,
    finished_at,
    extract(epoch from finished_at - started_at) as duration_seconds,
    rows_affected,
    error
from ops.job_runs;

-- Every dbt node's result (models, snapshots, tests) in every recorded invocation, with its timing.
create view monitoring.dbt_node_results as
select
    results.invocation_id,
    invocations.job_run_id,
    invocations.command,
    invocations.generated_at,
    results.unique_id,
    results.resource_type,
    results.status,
    results.started_at,
    results.completed_at,
    results.execution_seconds,
    results.rows_affected,
    results.failures,
    results.message
from ops.dbt_node_results as results
join ops.dbt_invocations as invocations on invocations.invocation_id = results.invocation_id;

-- Landed files and their row counts.
create view monitoring.ingested_files as
select file_id, object_key, rows_total, rows_accepted, rows_rejected, ingested_at
from ops.ingested_files;

-- One row per refused record and reason (the field and the rule it broke), without the record itself.
create view monitoring.rejected_rows as
select
    records.rejected_id,
    records.source,
    records.file_id,
    records.job_run_id,
    records.rejected_at,
    coalesce(reason ->> 'field', 'record') as field,
    coalesce(reason ->> 'rule', reason #>> '{}') as rule
from ops.rejected_records as records
cross join lateral jsonb_array_elements(records.errors) as reason;

-- ---------------------------------------------------------------------------------------------------------
-- grants: the marts and the monitoring schema, read only
-- ---------------------------------------------------------------------------------------------------------

grant usage on schema marts, monitoring to churn_readonly;
grant select on all tables in schema marts, monitoring to churn_readonly;
-- dbt (run as the role that migrates, from the same DATABASE_URL) recreates mart tables on every full
-- build, and later migrations add monitoring tables: both get the grant as they are created.
alter default privileges in schema marts grant select on tables to churn_readonly;
alter default privileges in schema monitoring grant select on tables to churn_readonly;
