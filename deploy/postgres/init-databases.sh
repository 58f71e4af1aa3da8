#!/bin/bash
# Runs once, when the postgres service starts on an empty volume (the official image runs every script in
# /docker-entrypoint-initdb.d as the superuser POSTGRES_USER): the app databases of Grafana and Metabase,
# each owned by a role of its own, and connections to each database limited to who needs them. The
# warehouse's read-only role churn_readonly is not made here: migration V6 creates it with its settings
# and grants (CONNECT on the warehouse among them), and the services set its password from
# READONLY_DB_PASSWORD at start.
#
# Passwords come from the environment (docker-compose.yml passes them from .env) and reach psql as
# variables (:'name' quotes them), never spliced into SQL text. To change one later: ALTER ROLE … PASSWORD,
# then the new value in .env (this script never runs again on a volume that has data).
set -euo pipefail

for name in GRAFANA_DB_PASSWORD METABASE_DB_PASSWORD; do
  [ -n "${!name:-}" ] || { echo "init-databases: $name must be set" >&2; exit 1; }
done

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v grafana_pw="$GRAFANA_DB_PASSWORD" -v metabase_pw="$METABASE_DB_PASSWORD" \
  -v warehouse="$POSTGRES_DB" <<'SQL'
create role grafana login password :'grafana_pw';
create role metabase login password :'metabase_pw';
create database grafana owner grafana;
create database metabase owner metabase;
-- Only each database's owner may connect to it (and, to the warehouse, the roles granted CONNECT).
revoke all on database grafana from public;
revoke all on database metabase from public;
revoke all on database :"warehouse" from public;
SQL
echo "init-databases: made the databases grafana and metabase, each with its owner role"
