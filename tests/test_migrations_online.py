"""New migrations must be safe to apply while the previous release serves traffic (docs/DEPLOYMENT.md,
"Zero-downtime migrations"): no long exclusive lock, no table rewrite, no full scan under a lock on the tables that
grow without bound. A migration may do any of that to a table it creates itself (it is empty).

The check reads the SQL each migration runs on PostgreSQL (`sqlmigrate`). Migrations released before the rule
are listed in RELEASED with what they did; they ran when these tables were small.
"""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# Tables that grow with traffic: an ACCESS EXCLUSIVE lock (or a SHARE lock while an index builds) on one of them
# holds up every request that writes it for as long as the statement runs.
BIG_TABLES = {
    "escalations_escalation", "escalations_escalationstage", "approvals_decision", "approvals_approvalrequest",
    "approvals_approvalstage", "audit_auditevent", "notifications_outboxevent", "notifications_delivery",
    "notifications_message", "trustguard_idempotencykey",
}
# What takes a long exclusive lock, rewrites or scans the table, and how to do it instead.
DANGEROUS = [
    (re.compile(r'^CREATE (UNIQUE )?INDEX (?!CONCURRENTLY)', re.I),
     "CREATE INDEX without CONCURRENTLY blocks writes while it builds: AddIndexConcurrently (atomic = False)"),
    (re.compile(r'ALTER COLUMN "?\w+"? (SET DATA )?TYPE', re.I),
     "changing a column's type rewrites the table under an exclusive lock: add a new column and backfill"),
    (re.compile(r'ALTER COLUMN "?\w+"? SET NOT NULL', re.I),
     "SET NOT NULL scans the table under an exclusive lock: a CHECK (col IS NOT NULL) NOT VALID, VALIDATE, then SET"),
    (re.compile(r'ADD CONSTRAINT .* (CHECK|FOREIGN KEY|UNIQUE)(?!.*NOT VALID)', re.I),
     "a constraint is checked against every row under the lock: add it NOT VALID, VALIDATE it in a later migration "
     "(a unique one: a unique index built CONCURRENTLY first)"),
    (re.compile(r'ADD COLUMN .* DEFAULT .*(now\(\)|gen_random_uuid|clock_timestamp|random\()', re.I),
     "a volatile default rewrites the table: add the column nullable, backfill in batches"),
    (re.compile(r'RENAME (COLUMN|TO)', re.I),
     "a rename breaks the release still running: add the new name, copy, drop the old one a release later"),
]
RELEASED = {
    # (app, migration): what it did to a big table, before this rule existed.
    ("approvals", "0004_stage_index_and_fillfactor"): "index on approvals' stages",
    ("approvals", "0005_uuid7_ids"): "id defaults (no rewrite) and indexes",
    ("audit", "0002_append_only"): "audit indexes (with the append-only triggers)",
    ("audit", "0004_fewer_auditevent_indexes"): "dropped and created audit indexes",
    ("escalations", "0002_sweep_friendly_indexes"): "sweep indexes",
    ("escalations", "0003_uuid7_ids"): "id defaults and indexes",
    ("notifications", "0002_message_webhookendpoint_delivery_channelpreference_and_more"): "deliveries and messages",
    ("notifications", "0004_uuid7_ids"): "id defaults and indexes",
    ("notifications", "0005_outbox_without_tenant_index"): "dropped an outbox index",
    ("notifications", "0006_message_valid_until"): "a nullable column on messages",
}


def statements(app: str, name: str) -> list[str]:
    out = StringIO()
    call_command("sqlmigrate", app, name, stdout=out)
    sql = "\n".join(line for line in out.getvalue().splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in sql.split(";\n") if s.strip()]


def problems_in(app: str, name: str) -> list[str]:
    sql = statements(app, name)
    created = {m.group(1) for s in sql if (m := re.match(r'CREATE TABLE "(\w+)"', s))}
    found = []
    for statement in sql:
        table = re.search(r'(?:ALTER TABLE|ON|INDEX \S+ ON) "?(\w+)"?', statement)
        if table is None or table.group(1) not in BIG_TABLES or table.group(1) in created:
            continue
        for pattern, advice in DANGEROUS:
            if pattern.search(statement):
                found.append(f"{app}.{name}: {statement[:120]}... -> {advice}")
    return found


def test_no_new_migration_locks_a_big_table_for_long():
    loader = MigrationLoader(connection)
    ours = sorted(key for key in loader.disk_migrations
                  if key[0] in {"accounts", "approvals", "audit", "escalations", "notifications", "reports", "trustguard"})

    found = [p for key in ours if key not in RELEASED for p in problems_in(*key)]

    assert found == [], "\n".join(found)


def test_the_check_finds_an_index_built_without_concurrently():
    # One released migration that did so: the check is not blind (it would refuse it if it were new).
    flagged = [p for key in RELEASED for p in problems_in(*key)]

    assert any("CONCURRENTLY" in p for p in flagged), flagged


def test_released_list_names_only_migrations_that_exist():
    loader = MigrationLoader(connection)

    assert set(RELEASED) <= set(loader.disk_migrations)
