"""SQLite: put the decision trigger back, and refuse DELETE as PostgreSQL does.

0005 (UUIDv7 ids) made Django rebuild approvals_decision on SQLite, which dropped the trigger 0003 had
created. This installs it again, plus the DELETE refusal PostgreSQL has had since 0002 (`flush` on SQLite
goes round it like TRUNCATE on PostgreSQL: trustguard/sqlite_backend). From now on trustguard.db_protections
re-installs missing triggers after every migrate and a system check refuses to start without them.
The SQL is frozen here, as migrations are.
"""

from django.db import migrations

TRIGGERS = {
    "approvals_decision_no_update": "BEFORE UPDATE ON approvals_decision "
                                    "BEGIN SELECT RAISE(ABORT, 'decisions are immutable'); END",
    "approvals_decision_no_delete": "BEFORE DELETE ON approvals_decision "
                                    "BEGIN SELECT RAISE(ABORT, 'decisions are immutable'); END",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for name, body in TRIGGERS.items():
            schema_editor.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")


def drop_new(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS approvals_decision_no_delete")


class Migration(migrations.Migration):
    dependencies = [("approvals", "0005_uuid7_ids")]
    operations = [migrations.RunPython(create, drop_new)]
