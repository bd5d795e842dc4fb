"""One approval per delegator, per round (delegation, issue #19, meets amendments, issue #20): a delegator and their
delegate count once toward a quorum, and after an amendment restarts the request they may approve again.

Safe online like 0008: the unique index is built CONCURRENTLY (so this migration is not atomic).
"""

from django.db import migrations, models

NEW = "decision_one_approval_per_delegator_round"


def create_index(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f'CREATE UNIQUE INDEX {concurrently}IF NOT EXISTS "{NEW}" ON "approvals_decision" '
                          "(\"request_id\", \"on_behalf_of_id\", \"round\") "
                          "WHERE \"decision\" = 'approve' AND \"on_behalf_of_id\" IS NOT NULL")


def drop_index(apps, schema_editor):
    schema_editor.execute(f'DROP INDEX IF EXISTS "{NEW}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('approvals', '0008_decision_rounds'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddConstraint(
                model_name='decision',
                constraint=models.UniqueConstraint(
                    condition=models.Q(('decision', 'approve'), ('on_behalf_of__isnull', False)),
                    fields=('request', 'on_behalf_of', 'round'), name=NEW))],
            database_operations=[migrations.RunPython(create_index, drop_index)],
        ),
    ]
