"""Cheaper stage updates (a decision counts an approval; a re-escalation sweep reassigns the role).

- request: no index of its own; approval_stage_unique (request, index) serves every lookup by request.
- fillfactor 80 on PostgreSQL: those updates change no indexed column, so with room left on the page
  PostgreSQL writes them as HOT updates (no index entries at all). Applies to pages written from now on.
"""

import django.db.models.deletion
from django.db import migrations, models


def fillfactor(value):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE approvals_approvalstage SET (fillfactor = {value})" if value
                                  else "ALTER TABLE approvals_approvalstage RESET (fillfactor)")
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0003_sqlite_decision_immutable'),
    ]

    operations = [
        migrations.AlterField(
            model_name='approvalstage',
            name='request',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='stages', to='approvals.approvalrequest'),
        ),
        migrations.RunPython(fillfactor(80), fillfactor(None)),
    ]
