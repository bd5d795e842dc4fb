"""Change management's indexes and checks on the escalations table, safe on a live database
(trustguard.migration_ops): indexes built concurrently, checks added NOT VALID (validated by 0007)."""

from django.db import migrations, models

from trustguard.migration_ops import AddCheckNotValid, AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("escalations", "0005_change_management"),
    ]

    operations = [
        AddIndexOnline(
            model_name='escalation',
            index=models.Index(condition=models.Q(('approval_expires_at__isnull', False), ('status', 'approved')), fields=['approval_expires_at', 'id'], name='esc_approval_lapse_idx'),
        ),
        AddIndexOnline(
            model_name='escalation',
            index=models.Index(condition=models.Q(('conditions_due_at__isnull', False)), fields=['conditions_due_at', 'id'], name='esc_conditions_due_idx'),
        ),
        AddCheckNotValid(
            model_name='escalation',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('estimated_cost_currency', ''), ('estimated_cost_minor__isnull', True)), models.Q(('estimated_cost_minor__gte', 0), models.Q(('estimated_cost_currency', ''), _negated=True)), _connector='OR'), name='escalation_estimated_cost_complete'),
        ),
        AddCheckNotValid(
            model_name='escalation',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('actual_cost_currency', ''), ('actual_cost_minor__isnull', True)), models.Q(('actual_cost_minor__gte', 0), models.Q(('actual_cost_currency', ''), _negated=True)), _connector='OR'), name='escalation_actual_cost_complete'),
        ),
        AddCheckNotValid(
            model_name='escalation',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('window_ends_at__isnull', True), ('window_starts_at__isnull', True)), ('window_ends_at__gt', models.F('window_starts_at')), _connector='OR'), name='escalation_window_ordered'),
        ),
    ]
