"""The sealer's queue: a partial index on the unsealed events (audit.sealing), built CONCURRENTLY on PostgreSQL so that
the audit table keeps taking writes while it builds (docs/DEPLOYMENT.md, "Zero-downtime deploys"); not atomic."""

from django.db import migrations, models

NAME = "audit_unsealed_idx"


def create_index(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f'CREATE INDEX {concurrently}IF NOT EXISTS "{NAME}" ON "audit_auditevent" '
                          '("chain_key", "id") WHERE "seq" IS NULL')


def drop_index(apps, schema_editor):
    schema_editor.execute(f'DROP INDEX IF EXISTS "{NAME}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('audit', '0008_unsealed_events'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(
                model_name='auditevent',
                index=models.Index(condition=models.Q(('seq__isnull', True)), fields=['chain_key', 'id'], name=NAME))],
            database_operations=[migrations.RunPython(create_index, drop_index)],
        ),
    ]
