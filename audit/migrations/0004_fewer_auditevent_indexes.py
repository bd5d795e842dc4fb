"""Fewer indexes for every audit insert to maintain (the sweeps write thousands of events per second).

- tenant: no index of its own; every query by tenant uses audit_tenant_created_idx or audit_actor_idx.
- action: the plain index stays, renamed audit_action_idx rather than built again (the table is large and
  every audited action waits while an index is built); PostgreSQL's varchar_pattern_ops twin that
  db_index=True added goes: no query matches action with LIKE 'prefix%' (escalation_events' NOT LIKE
  cannot use an index).
"""

import django.db.models.deletion
from django.db import migrations, models

OLD = "audit_auditevent_action_2131bb77"  # the name db_index=True gave the index on action


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {OLD}_like")
        schema_editor.execute(f"ALTER INDEX IF EXISTS {OLD} RENAME TO audit_action_idx")
    else:
        schema_editor.execute(f"DROP INDEX IF EXISTS {OLD}")
    schema_editor.execute("CREATE INDEX IF NOT EXISTS audit_action_idx ON audit_auditevent (action)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER INDEX IF EXISTS audit_action_idx RENAME TO {OLD}")
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {OLD}_like ON audit_auditevent (action varchar_pattern_ops)")
    else:
        schema_editor.execute("DROP INDEX IF EXISTS audit_action_idx")
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {OLD} ON audit_auditevent (action)")


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('audit', '0003_sqlite_append_only'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='auditevent',
                    name='action',
                    field=models.CharField(max_length=64),
                ),
                migrations.AddIndex(
                    model_name='auditevent',
                    index=models.Index(fields=['action'], name='audit_action_idx'),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='tenant',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.tenant'),
        ),
    ]
