"""Validate the checks 0006 added NOT VALID: the existing rows, under a lock that lets writes through."""

from django.db import migrations

from trustguard.migration_ops import ValidateConstraint


class Migration(migrations.Migration):
    dependencies = [
        ("escalations", "0006_change_management_online"),
    ]

    operations = [
        ValidateConstraint("escalation", "escalation_estimated_cost_complete"),
        ValidateConstraint("escalation", "escalation_actual_cost_complete"),
        ValidateConstraint("escalation", "escalation_window_ordered"),
    ]
