"""Indexes for the sweeps' claim order, and none that no query needs (each UPDATE that is not HOT, such as a
re-escalation's, inserts into every index of the table).

- The sweeps' partial indexes gain the id: SELECT ... ORDER BY deadline, id LIMIT n FOR UPDATE SKIP LOCKED
  walks the index and stops after n rows instead of sorting every due row once per chunk.
- tenant, policy: no index of their own (lookups by tenant use the (tenant, ...) indexes; nothing filters
  by policy, and policies are never deleted).
- requested_by_user, requested_by_api_key, acknowledged_by: indexed only where set (equality lookups and
  the PROTECT checks imply IS NOT NULL, so the partial indexes serve them all).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('approvals', '0004_stage_index_and_fillfactor'),
        ('escalations', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='escalation',
            name='esc_ack_due_idx',
        ),
        migrations.RemoveIndex(
            model_name='escalation',
            name='esc_expiry_idx',
        ),
        migrations.RemoveIndex(
            model_name='escalation',
            name='esc_defer_idx',
        ),
        migrations.AlterField(
            model_name='escalation',
            name='acknowledged_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='escalation',
            name='policy',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='escalations', to='escalations.policy'),
        ),
        migrations.AlterField(
            model_name='escalation',
            name='requested_by_api_key',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.apikey'),
        ),
        migrations.AlterField(
            model_name='escalation',
            name='requested_by_user',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='escalation',
            name='tenant',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='escalations', to='accounts.tenant'),
        ),
        migrations.AddIndex(
            model_name='escalation',
            index=models.Index(condition=models.Q(('status', 'pending')), fields=['ack_due_at', 'id'], name='esc_ack_due_idx'),
        ),
        migrations.AddIndex(
            model_name='escalation',
            index=models.Index(condition=models.Q(('status__in', ['pending', 'acknowledged'])), fields=['expires_at', 'id'], name='esc_expiry_idx'),
        ),
        migrations.AddIndex(
            model_name='escalation',
            index=models.Index(condition=models.Q(('status', 'deferred')), fields=['defer_until', 'id'], name='esc_defer_idx'),
        ),
        migrations.AddIndex(
            model_name='escalation',
            index=models.Index(condition=models.Q(('requested_by_api_key__isnull', False)), fields=['requested_by_api_key'], name='esc_requested_by_key_idx'),
        ),
        migrations.AddIndex(
            model_name='escalation',
            index=models.Index(condition=models.Q(('requested_by_user__isnull', False)), fields=['requested_by_user'], name='esc_requested_by_user_idx'),
        ),
        migrations.AddIndex(
            model_name='escalation',
            index=models.Index(condition=models.Q(('acknowledged_by__isnull', False)), fields=['acknowledged_by'], name='esc_acknowledged_by_idx'),
        ),
    ]
