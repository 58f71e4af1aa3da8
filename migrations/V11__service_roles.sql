-- One role per service, each with only the grants its code needs (issue 23, least privilege).
--
--   churn_classifier   reads the registry (the champion and challenger it serves)
--   churn_synthesizer  reads the registry and registers its own model: new models, versions and a first
--                      alias; it cannot move an alias, delete a version, or touch the warehouse
--   churn_scheduler    the warehouse (churn), ops, monitoring and the registry: its jobs, the ingestion,
--                      the retrain and the MLflow-compatible API write all four
--   churn_dbt          owns dbt's schemas (staging, marts, snapshots) and reads the sources it models
--   churn_readonly     (V6) the BI tools: marts and monitoring, read only
--
-- Whoever runs the migrations owns every other object (the schema owner: compose's churn_owner, made by
-- deploy/postgres/init-databases.sh; the superuser in tests and local runs). No service runs as it.
-- Passwords are not in this file: the migrating process sets each role's password from its variable
-- (CLASSIFIER_DB_PASSWORD, …) as a SCRAM verifier computed client-side (churn_store::roles).
--
-- Grants are schema-wide where the rule is schema-wide ("the scheduler: warehouse and ops"), with default
-- privileges so tables later migrations add (ops.audit_log, …) carry the same grants without a word.

-- Roles belong to the server, not the database: another database on the same server may have made them,
-- even at this moment (a concurrent creation fails with unique_violation rather than duplicate_object).
do $$
declare
    service_role text;
begin
    foreach service_role in array
        array['churn_classifier', 'churn_synthesizer', 'churn_scheduler', 'churn_dbt']
    loop
        begin
            execute format('create role %I login noinherit', service_role);
        exception
            when duplicate_object or unique_violation then null;
        end;
    end loop;
end
$$;

do $$
begin
    execute format('grant connect on database %I to churn_classifier, churn_synthesizer, churn_scheduler, '
        'churn_dbt', current_database());
    -- Ingestion stages rows in a temporary table; dbt's incremental models build through one.
    execute format('grant temporary on database %I to churn_scheduler, churn_dbt', current_database());
end
$$;

-- ---------------------------------------------------------------------------------------------------------
-- classifier: reads the registry
-- ---------------------------------------------------------------------------------------------------------

grant usage on schema registry to churn_classifier;
grant select on all tables in schema registry to churn_classifier;
alter default privileges in schema registry grant select on tables to churn_classifier;

-- ---------------------------------------------------------------------------------------------------------
-- synthesizer: reads the registry, registers its own versions
-- ---------------------------------------------------------------------------------------------------------

grant usage on schema registry to churn_synthesizer;
grant select on all tables in schema registry to churn_synthesizer;
alter default privileges in schema registry grant select on tables to churn_synthesizer;
-- register(): the model's row (touched on every version), the version, and the first alias when there is
-- none (insert … on conflict do nothing: never a move).
grant insert on registry.registered_models, registry.model_versions, registry.aliases to churn_synthesizer;
grant update (updated_at) on registry.registered_models to churn_synthesizer;

-- ---------------------------------------------------------------------------------------------------------
-- scheduler: the warehouse, ops, monitoring and the registry
-- ---------------------------------------------------------------------------------------------------------

grant usage on schema churn, ops, monitoring, registry to churn_scheduler;
grant select, insert, update, delete on all tables in schema churn, ops, monitoring, registry
    to churn_scheduler;
grant usage, select on all sequences in schema churn, ops, monitoring, registry to churn_scheduler;
alter default privileges in schema churn, ops, monitoring, registry
    grant select, insert, update, delete on tables to churn_scheduler;
alter default privileges in schema churn, ops, monitoring, registry
    grant usage, select on sequences to churn_scheduler;

-- ---------------------------------------------------------------------------------------------------------
-- dbt: owns its schemas, reads its sources
-- ---------------------------------------------------------------------------------------------------------

-- Changing an owner needs membership in the new owner. A superuser has it; the schema owner of compose
-- (CREATEROLE, so it administers the roles it made) grants it to itself. Only then: concurrent GRANTs of
-- one membership from two databases would collide on the server-wide catalog.
do $$
begin
    if not (select rolsuper from pg_roles where rolname = current_user)
        and not pg_has_role(current_user, 'churn_dbt', 'member') then
        execute format('grant churn_dbt to %I', current_user);
    end if;
end
$$;

create schema if not exists staging;
create schema if not exists snapshots;
alter schema staging owner to churn_dbt;
alter schema marts owner to churn_dbt;
alter schema snapshots owner to churn_dbt;

-- What an earlier dbt run made (as the identity that migrates, before this role existed) passes to dbt,
-- which drops and recreates its relations on a full build.
do $$
declare
    relation record;
begin
    for relation in
        select format('%I.%I', n.nspname, c.relname) as name, c.relkind
        from pg_class as c
        join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname in ('staging', 'marts', 'snapshots')
            and c.relkind in ('r', 'p', 'v', 'm')
    loop
        execute format('alter %s %s owner to churn_dbt',
            case relation.relkind when 'v' then 'view' when 'm' then 'materialized view' else 'table' end,
            relation.name);
    end loop;
end
$$;

-- The sources of dbt/models/staging: read only.
grant usage on schema churn, ops, monitoring, registry to churn_dbt;
grant select on all tables in schema churn, ops, monitoring, registry to churn_dbt;
alter default privileges in schema churn, ops, monitoring, registry grant select on tables to churn_dbt;

-- The BI tools read the marts dbt makes from now on (V6's default privileges cover the migrating
-- identity's tables, not dbt's).
alter default privileges for role churn_dbt in schema marts grant select on tables to churn_readonly;
grant select on all tables in schema marts to churn_readonly;

-- ---------------------------------------------------------------------------------------------------------
-- the audit log (V10): the classifier records its manual actions there too; the scheduler has ops whole
-- ---------------------------------------------------------------------------------------------------------

do $$
begin
    if to_regclass('ops.audit_log') is not null then
        grant usage on schema ops to churn_classifier;
        execute 'grant select, insert on ops.audit_log to churn_classifier';
    end if;
end
$$;
