#!/bin/bash
# Runs once, when the postgres service starts on an empty volume (the official image runs every script in
# /docker-entrypoint-initdb.d as the superuser POSTGRES_USER): the warehouse's schema owner churn_owner,
# and the app databases of Grafana and Metabase, each owned by a role of its own, and connections to each
# database limited to who needs them.
#
# churn_owner owns the warehouse database and may create roles (CREATEROLE), nothing more: the one-shot
# `migrate` (churnctl migrate) runs the migrations as it, which create the services' roles and grants
# (V6: churn_readonly; V11: churn_classifier, churn_synthesizer, churn_scheduler, churn_dbt) and set their
# passwords as SCRAM verifiers. No service logs in as the superuser, which stays for this script, backups
# (scripts/backup) and an operator's psql inside the container.
#
# Passwords come from the environment (docker-compose.yml passes them from .env) and reach psql as
# variables (:'name' quotes them), never spliced into SQL text. To change one later: ALTER ROLE … PASSWORD,
# then the new value in .env (this script never runs again on a volume that has data).
set -euo pipefail

for name in OWNER_DB_PASSWORD GRAFANA_DB_PASSWORD METABASE_DB_PASSWORD; do
  [ -n "${!name:-}" ] || { echo "init-databases: $name must be set" >&2; exit 1; }
done

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v owner_pw="$OWNER_DB_PASSWORD" -v grafana_pw="$GRAFANA_DB_PASSWORD" \
  -v metabase_pw="$METABASE_DB_PASSWORD" -v warehouse="$POSTGRES_DB" <<'SQL'
-- These three bootstrap passwords reach the server as text (the server stores their SCRAM verifiers): this
-- runs once, over the container's Unix socket, with statement logging off. The service roles' passwords
-- never do: churnctl migrate sends verifiers it computes itself.
create role churn_owner login createrole password :'owner_pw';
alter database :"warehouse" owner to churn_owner;
create role grafana login password :'grafana_pw';
create role metabase login password :'metabase_pw';
create database grafana owner grafana;
create database metabase owner metabase;
-- Only each database's owner may connect to it (and, to the warehouse, the roles granted CONNECT).
revoke all on database grafana from public;
revoke all on database metabase from public;
revoke all on database :"warehouse" from public;
SQL
echo "init-databases: made the warehouse owner churn_owner and the databases grafana and metabase, each with its owner role"
