"""SQLite (the embedded development database): refuse UPDATE of audit events and checkpoints.

PostgreSQL gets its triggers from pgtrigger (0002). On SQLite only UPDATE is refused: Django's
`flush` (and so every transactional test) empties tables with DELETE there, in no fixed order, so
a DELETE trigger would break it. A deleted event still breaks the hash chain, which verify_audit reports.
"""

from django.db import migrations

TABLES = {"audit_auditevent": "audit events", "audit_auditcheckpoint": "audit checkpoints"}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for table, what in TABLES.items():
        schema_editor.execute(
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{what} are append-only'); END;"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update;")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only")]
    operations = [migrations.RunPython(create, drop)]
