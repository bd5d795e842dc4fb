"""Decision rounds: an amendment restarts an approval request (approvals.services.approval_restart); approvals of
earlier rounds are dismissed, so "one approval per person" holds per round.

Safe online (tests/test_migrations_online.py): the two columns have a constant default (no rewrite on PostgreSQL
11+); the new unique index is built CONCURRENTLY (so this migration is not atomic) before the old one is dropped.
"""

from django.conf import settings
from django.db import migrations, models

NEW = "decision_one_approval_per_person_round"


def create_index(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f'CREATE UNIQUE INDEX {concurrently}IF NOT EXISTS "{NEW}" ON "approvals_decision" '
                          "(\"request_id\", \"decided_by_id\", \"round\") WHERE \"decision\" = 'approve'")


def drop_index(apps, schema_editor):
    schema_editor.execute(f'DROP INDEX IF EXISTS "{NEW}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('approvals', '0007_decision_on_behalf_of'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='approvalrequest',
            name='round',
            field=models.PositiveSmallIntegerField(db_default=1, default=1),
        ),
        migrations.AddField(
            model_name='decision',
            name='round',
            field=models.PositiveSmallIntegerField(db_default=1, default=1, help_text="The request's round it was given in."),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddConstraint(
                model_name='decision',
                constraint=models.UniqueConstraint(condition=models.Q(('decision', 'approve')),
                                                   fields=('request', 'decided_by', 'round'), name=NEW))],
            database_operations=[migrations.RunPython(create_index, drop_index)],
        ),
        migrations.RemoveConstraint(
            model_name='decision',
            name='decision_one_approval_per_person',
        ),
    ]
