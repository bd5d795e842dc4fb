#!/usr/bin/env bash
# TrustGuard's two PostgreSQL roles and its database, created idempotently (docs/DEPLOYMENT.md, "Least privilege").
#
#   OWNER_ROLE owns the database and every table; only `manage.py migrate` connects as it.
#   APP_ROLE   is what web, worker and beat connect as. It owns nothing; `migrate`, run as the owner with
#              TRUSTGUARD_DB_APP_ROLE=APP_ROLE, grants it exactly what the application needs: on the audit events,
#              retention checkpoints and decisions SELECT and INSERT only (no UPDATE, DELETE, TRUNCATE, and as a
#              non-owner no ALTER TABLE ... DISABLE TRIGGER), EXECUTE on audit_prune_prefix.
#
# usage: deploy/db-roles.sh DATABASE OWNER_ROLE APP_ROLE [OWNER_PASSWORD APP_PASSWORD]
# Connects as an administrator through psql's usual variables (PGHOST, PGPORT, PGUSER, PGPASSWORD); default
# postgres on 127.0.0.1:5432. Without passwords the roles get none (local trust authentication, as in CI).
set -euo pipefail
if [ $# -ne 3 ] && [ $# -ne 5 ]; then
  echo "usage: $0 DATABASE OWNER_ROLE APP_ROLE [OWNER_PASSWORD APP_PASSWORD]" >&2
  exit 2
fi
DATABASE=$1 OWNER=$2 APP=$3 OWNER_PASSWORD=${4:-} APP_PASSWORD=${5:-}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
psql_admin() { psql -v ON_ERROR_STOP=1 -q -X "$@"; }

psql_admin -d postgres -v owner="$OWNER" -v app="$APP" -v owner_pw="$OWNER_PASSWORD" -v app_pw="$APP_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', :'owner')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', :'app')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
-- Neither may ever be a superuser (a superuser can switch triggers off): say so even for roles that existed.
SELECT format('ALTER ROLE %I NOSUPERUSER', :'owner') \gexec
SELECT format('ALTER ROLE %I NOSUPERUSER NOBYPASSRLS', :'app') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'owner', :'owner_pw') WHERE :'owner_pw' <> '' \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'app', :'app_pw') WHERE :'app_pw' <> '' \gexec
SQL

if [ "$(psql_admin -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '${DATABASE//\'/\'\'}'")" != "1" ]; then
  psql_admin -d postgres -v db="$DATABASE" -v owner="$OWNER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner') \gexec
SQL
fi

# The owner owns the database and its public schema (PostgreSQL 15: pg_database_owner); the application role may
# connect and use the schema, never create in it.
psql_admin -d "$DATABASE" -v db="$DATABASE" -v owner="$OWNER" -v app="$APP" <<'SQL'
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'owner') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'db', :'app') \gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'db', :'owner') \gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SELECT format('REVOKE CREATE ON SCHEMA public FROM %I', :'app') \gexec
SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'app') \gexec
SQL
echo "db-roles: database ${DATABASE} owned by ${OWNER}; application role ${APP} (migrate with TRUSTGUARD_DB_APP_ROLE=${APP})"
