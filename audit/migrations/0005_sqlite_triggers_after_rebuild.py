"""SQLite: put the audit triggers back, and refuse DELETE as PostgreSQL does.

0004's AlterField of `tenant` made Django rebuild audit_auditevent on SQLite (copy, drop, rename), which
dropped the trigger 0003 had created: on the embedded default anyone could edit audit events. This installs
it again, plus the DELETE rules PostgreSQL has had since 0002: an event only when a retention checkpoint
covers it, a checkpoint never. (`flush` on SQLite now goes round them like TRUNCATE on PostgreSQL:
trustguard/sqlite_backend.) From now on trustguard.db_protections re-installs missing triggers after every
migrate and a system check refuses to start without them. The SQL is frozen here, as migrations are.
"""

from django.db import migrations

NOT_PRUNED = ("OLD.seq > COALESCE((SELECT MAX(c.seq) FROM audit_auditcheckpoint c "
              "WHERE c.chain_key = OLD.chain_key), 0)")
TRIGGERS = {
    "audit_auditevent_no_update": "BEFORE UPDATE ON audit_auditevent "
                                  "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
    "audit_auditevent_no_delete": f"BEFORE DELETE ON audit_auditevent WHEN {NOT_PRUNED} BEGIN SELECT RAISE(ABORT, "
                                  "'audit events are append-only: not covered by a retention checkpoint'); END",
    "audit_auditcheckpoint_no_update": "BEFORE UPDATE ON audit_auditcheckpoint "
                                       "BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END",
    "audit_auditcheckpoint_no_delete": "BEFORE DELETE ON audit_auditcheckpoint "
                                       "BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END",
}
NEW = ("audit_auditevent_no_delete", "audit_auditcheckpoint_no_delete")


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for name, body in TRIGGERS.items():
            schema_editor.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")


def drop_new(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for name in NEW:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_fewer_auditevent_indexes")]
    operations = [migrations.RunPython(create, drop_new)]
