"""SQLite (the embedded development database): refuse UPDATE of decisions (PostgreSQL: pgtrigger, 0002).

DELETE is not refused on SQLite because Django's `flush` empties tables with DELETE there.
"""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(
            "CREATE TRIGGER IF NOT EXISTS approvals_decision_no_update BEFORE UPDATE ON approvals_decision "
            "BEGIN SELECT RAISE(ABORT, 'decisions are immutable'); END;"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS approvals_decision_no_update;")


class Migration(migrations.Migration):
    dependencies = [("approvals", "0002_append_only")]
    operations = [migrations.RunPython(create, drop)]
