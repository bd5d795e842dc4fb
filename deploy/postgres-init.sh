#!/usr/bin/env bash
# compose.yaml: the postgres image runs this once, when it initialises an empty data volume (as its superuser,
# over the local socket): TrustGuard's owner and application roles (deploy/db-roles.sh). For a volume initialised
# before, run it by hand: docs/DEPLOYMENT.md, "Least privilege".
set -euo pipefail
PGHOST=/var/run/postgresql PGPORT=5432 PGUSER="$POSTGRES_USER" \
  /opt/trustguard/db-roles.sh "$POSTGRES_DB" trustguard_owner trustguard_app \
  "${TRUSTGUARD_DB_OWNER_PASSWORD:?}" "${TRUSTGUARD_DB_APP_PASSWORD:?}"
