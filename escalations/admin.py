"""The operators' admin for policies, trigger rules and (read-only) escalations.

Policy edits go through policies.policy_upsert, so each edit bumps the version and is audited;
escalations change only through their lifecycle services, so the admin shows them read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from accounts.actors import Actor
from accounts.admin import ServiceBackedHistoryAdmin, audited_save
from audit.actions import AuditAction
from privacy.admin_mixins import PersonalDataAdminMixin, masked_names
from trustguard.errors import ValidationFailed
from trustguard.money import format_money

from .models import Escalation, Policy, TriggerRule
from .policies import SNAPSHOT_FIELDS, policy_upsert, validate_policy_fields

EDITABLE_POLICY_FIELDS = [f for f in SNAPSHOT_FIELDS if f not in ("type", "version")] + ["is_active"]


class PolicyForm(forms.ModelForm):
    class Meta:
        model = Policy
        fields = ["tenant", "type", *EDITABLE_POLICY_FIELDS]

    def clean(self) -> dict[str, Any]:
        """The policy rules of the API (route shape, roles, channels, levels), shown next to each field."""
        data = super().clean() or {}
        fields = {k: data[k] for k in EDITABLE_POLICY_FIELDS if k in data}
        try:
            data.update(validate_policy_fields(fields, tenant=data.get("tenant") or getattr(self.instance, "tenant", None)))
        except ValidationFailed as exc:
            for name, problems in (exc.errors or {"__all__": [exc.detail]}).items():
                field = name.split("[")[0] if name.split("[")[0] in self.fields else None
                self.add_error(field, problems)
        return data


@admin.register(Policy)
class PolicyAdmin(ServiceBackedHistoryAdmin):
    form = PolicyForm
    list_display = ("type", "name", "tenant", "version", "ack_sla_seconds", "expiry_seconds", "is_active", "updated_at")
    list_filter = ("tenant", "is_active", "default_risk_level", "single_employee_mode")
    search_fields = ("type", "name", "tenant__slug")
    readonly_fields = ("version", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Policy | None = None) -> tuple[str, ...]:
        return ("tenant", "type", "version", "updated_at") if obj else ("version", "updated_at")

    def save_model(self, request: HttpRequest, obj: Policy, form: Any, change: bool) -> None:
        fields = {k: form.cleaned_data[k] for k in EDITABLE_POLICY_FIELDS if k in form.cleaned_data}
        saved = policy_upsert(tenant=obj.tenant, type=obj.type, fields=fields,
                              actor=Actor(tenant=obj.tenant, user=request.user))  # type: ignore[arg-type]
        obj.pk, obj.version, obj._state.adding = saved.pk, saved.version, False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # escalations keep a PROTECTed link to their policy; deactivate instead


@admin.register(TriggerRule)
class TriggerRuleAdmin(ServiceBackedHistoryAdmin):
    list_display = ("__str__", "tenant", "kind", "escalation_type", "priority", "is_active")
    list_filter = ("tenant", "kind", "is_active", "escalation_type")
    search_fields = ("escalation_type", "flag", "currency", "tenant__slug")
    ordering = ("tenant", "priority", "id")

    def save_model(self, request: HttpRequest, obj: TriggerRule, form: Any, change: bool) -> None:
        # Trigger rules have no service of their own; the admin edit still leaves its audit event.
        audited_save(request, obj, tenant=obj.tenant, action=AuditAction.TRIGGER_RULE_CHANGED, target_type="trigger_rule")


@admin.register(Escalation)
class EscalationAdmin(PersonalDataAdminMixin, admin.ModelAdmin):
    """Read-only: escalations change through their lifecycle (API and dashboard), never by hand. Personal data
    shows masked, and the search box finds a case by its customer's email or phone (privacy.admin_mixins)."""

    list_display = ("source_entity_id", "type", "tenant", "status", "amount", "risk_level", "assigned_role",
                    "escalation_level", "next_deadline_at", "created_at")
    list_filter = ("tenant", "status", "type", "risk_level", "urgency", "assigned_role", "escalation_level")
    search_fields = ("=id", "source_entity_id", "reason", "requested_by_email")
    date_hierarchy = "created_at"
    list_select_related = ("tenant",)
    ordering = ("-created_at",)
    readonly_fields = ("decisions",)
    show_full_result_count = False

    @admin.display(description="amount")
    def amount(self, obj: Escalation) -> str:
        return format_money(obj.amount_minor, obj.currency, obj.tenant.locale)  # tenant: list_select_related

    @admin.display(description="decisions")
    def decisions(self, obj: Escalation) -> str:
        rows = obj.approval.decisions.select_related("decided_by").order_by("decided_at")
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li>{} by {} ({}) at stage {}: {}</li>",
            ((d.decision, d.decided_by.username, d.role, d.stage + 1, d.justification) for d in rows))) or "—"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*masked_names([f.name for f in Escalation._meta.fields]), "decisions"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # view permission suffices to read; nobody edits a case in the admin


from . import admin_terminology  # noqa: E402,F401  (the language pack: its own module, registered with this admin)
