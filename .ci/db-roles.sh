#!/usr/bin/env bash
# CI (and any PostgreSQL): TrustGuard's owner and application roles and its database, idempotently.
# The one script is deploy/db-roles.sh (production uses it too: docs/DEPLOYMENT.md, "Least privilege").
exec "$(dirname "$0")/../deploy/db-roles.sh" "$@"
