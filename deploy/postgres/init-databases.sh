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
# Passwords come from the environment (docker-compose.yml passes them from .env) and never reach the server
# as text: psql's \password computes each role's SCRAM verifier on this side and sends only the verifier,
# as churnctl migrate does for the services' roles. To change one later: \password in psql, then the new
# value in .env (this script never runs again on a volume that has data).
set -euo pipefail

for name in OWNER_DB_PASSWORD GRAFANA_DB_PASSWORD METABASE_DB_PASSWORD; do
  [ -n "${!name:-}" ] || { echo "init-databases: $name must be set" >&2; exit 1; }
done

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v warehouse="$POSTGRES_DB" <<'SQL'
create role churn_owner login createrole;
alter database :"warehouse" owner to churn_owner;
create role grafana login;
create role metabase login;
create database grafana owner grafana;
create database metabase owner metabase;
-- Only each database's owner may connect to it (and, to the warehouse, the roles granted CONNECT).
revoke all on database grafana from public;
revoke all on database metabase from public;
revoke all on database :"warehouse" from public;
SQL

# \password reads the new password twice from the terminal, or from stdin when there is none: setsid
# makes sure there is none, so the value comes from the pipe and is never an argument (ps) or SQL text.
set_password() {
  local role=$1 password=$2
  printf '%s\n%s\n' "$password" "$password" \
    | setsid -w psql -v ON_ERROR_STOP=1 --quiet --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        -c "\\password $role" \
    || { echo "init-databases: could not set the password of $role" >&2; exit 1; }
  # The verifier, never the password, is what the server keeps (and all it was sent).
  psql -v ON_ERROR_STOP=1 -Atq --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v role="$role" <<'SQL' \
    | grep -qx 1 || { echo "init-databases: $role has no SCRAM verifier" >&2; exit 1; }
select 1 from pg_authid where rolname = :'role' and rolpassword like 'SCRAM-SHA-256$%';
SQL
}
set_password churn_owner "$OWNER_DB_PASSWORD"
set_password grafana "$GRAFANA_DB_PASSWORD"
set_password metabase "$METABASE_DB_PASSWORD"
echo "init-databases: made the warehouse owner churn_owner and the databases grafana and metabase, each with its owner role"
