"""Policies and trigger rules in the admin, with their field-level history (simple-history).

Read-only here: policy edits go through escalations.policies.policy_upsert, which bumps the
version and audits the change; an admin form saving the model directly would bypass both.
"""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import HistoryReadOnlyAdmin

from .models import Policy, TriggerRule


@admin.register(Policy)
class PolicyAdmin(HistoryReadOnlyAdmin):
    list_display = ("tenant", "type", "name", "version", "is_active", "updated_at")
    list_filter = ("tenant", "is_active")


@admin.register(TriggerRule)
class TriggerRuleAdmin(HistoryReadOnlyAdmin):
    list_display = ("tenant", "priority", "kind", "escalation_type", "currency", "threshold_minor", "flag", "is_active")
    list_filter = ("tenant", "kind")
