"""The operators' admin for policies, trigger rules and (read-only) escalations.

Policy edits go through policies.policy_upsert, so each edit bumps the version and is audited;
escalations change only through their lifecycle services, so the admin shows them read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, gettext_lazy

from accounts.actors import Actor
from accounts.admin import ServiceBackedHistoryAdmin, audited_save
from accounts.roles import role_label
from audit.actions import AuditAction
from privacy.admin_mixins import PersonalDataAdminMixin, masked_names
from trustguard.errors import Conflict, ValidationFailed
from trustguard.money import format_money

from .models import APPROVALS_PRECEDENCE, ChangeTemplate, Escalation, Policy, RiskLevel, TriggerRule
from .policies import policy_upsert
from .policy_editor import (
    PolicyEditorForm,
    PreviewInputForm,
    effective_table,
    example_amount_text,
    policy_preview,
    split_duration,
)
from .standard_changes import template_upsert, template_validate


@admin.register(Policy)
class PolicyAdmin(ServiceBackedHistoryAdmin):
    """The policy editor (escalations.policy_editor): choices and durations, a route builder, a live preview, and
    each version's differences. Saving goes through policies.policy_upsert (version bump, audit event)."""

    form = PolicyEditorForm
    change_form_template = "admin/escalations/policy/change_form.html"
    list_display = ("type", "name", "tenant", "version", "route_summary", "sla", "is_active", "updated_at")
    list_filter = ("tenant", "is_active", "default_risk_level", "single_employee_mode")
    search_fields = ("type", "name", "tenant__slug")
    readonly_fields = ("version", "updated_at")

    @admin.display(description=gettext_lazy("route"))
    def route_summary(self, obj: Policy) -> str:
        return " → ".join("/".join(role_label(r) for r in stage["roles"]) + (" (if …)" if stage.get("when") else "")
                          for stage in obj.route or [])

    @admin.display(description=gettext_lazy("acknowledge / expire"))
    def sla(self, obj: Policy) -> str:
        return " / ".join("{} {}".format(*split_duration(s)) for s in (obj.ack_sla_seconds, obj.expiry_seconds))

    def get_readonly_fields(self, request: HttpRequest, obj: Policy | None = None) -> tuple[str, ...]:
        return ("tenant", "type", "version", "updated_at") if obj else ("version", "updated_at")

    def save_model(self, request: HttpRequest, obj: Policy, form: Any, change: bool) -> None:
        saved = policy_upsert(tenant=obj.tenant, type=obj.type, fields=form.cleaned_policy,
                              actor=Actor(tenant=obj.tenant, user=request.user),  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
                              expected_version=form.cleaned_data.get("based_on_version"))
        obj.pk, obj.version, obj._state.adding = saved.pk, saved.version, False

    def changeform_view(self, request: HttpRequest, object_id: str | None = None, form_url: str = "",
                        extra_context: dict[str, Any] | None = None) -> Any:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except Conflict as exc:
            self.message_user(request, gettext("Not saved: %(why)s") % {"why": exc.detail}, messages.ERROR)
            return HttpResponseRedirect(request.path)

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], add: bool = False,
                           change: bool = False, form_url: str = "", obj: Policy | None = None) -> Any:
        policy = obj if obj is not None and obj.pk else None
        context.update({
            "preview_form": PreviewInputForm(),
            "precedence": APPROVALS_PRECEDENCE,
            "effective": effective_table(policy.route, policy.approvals_by_risk or {}) if policy else [],
            "risk_levels": RiskLevel.values,
            "preview_url": reverse("admin:escalations_policy_preview"),
            "versions_url": reverse("admin:escalations_policy_versions", args=[policy.pk]) if policy else None,
        })
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self) -> list[Any]:
        custom = [
            path("preview/", self.admin_site.admin_view(self.preview_view), name="escalations_policy_preview"),
            path("<int:policy_id>/versions/", self.admin_site.admin_view(self.versions_view),
                 name="escalations_policy_versions"),
        ]
        return custom + super().get_urls()

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """htmx: the route an example request would take under the policy as it stands in the form (unsaved)."""
        if request.method != "POST" or not self.has_view_permission(request):
            return HttpResponse(status=405 if request.method != "POST" else 403)
        policy_id = request.POST.get("policy_id", "")
        policy = (Policy.objects.filter(pk=int(policy_id)).select_related("tenant").first()
                  if policy_id.isdigit() else None)
        # The page's own form class: tenant and type are read-only once a policy exists, so not posted.
        form = self.get_form(request, policy, change=policy is not None)(data=request.POST, instance=policy or Policy())
        example = PreviewInputForm(data=request.POST)
        context: dict[str, Any] = {"form": form, "example": example}
        if form.is_valid() and example.is_valid():
            tenant = form.cleaned_data.get("tenant") or policy.tenant  # type: ignore[union-attr]  # no tenant posted means an existing policy
            fields = form.cleaned_policy  # type: ignore[attr-defined]  # get_form subclasses PolicyEditorForm; stubs say ModelForm
            context.update({
                "preview": policy_preview(tenant=tenant, fields=fields, example=example.cleaned_data),
                "amount_text": example_amount_text(example.cleaned_data),
                "effective": effective_table(fields["route"], fields.get("approvals_by_risk") or {}),
                "risk_levels": RiskLevel.values,
            })
        return TemplateResponse(request, "admin/escalations/policy/_preview.html", context)

    def versions_view(self, request: HttpRequest, policy_id: int) -> HttpResponse:
        """Each saved version of a policy and what changed from the one before (simple-history records)."""
        policy = get_object_or_404(Policy, pk=policy_id)
        if not self.has_view_permission(request, policy):
            return HttpResponseRedirect(reverse("admin:index"))
        records = list(policy.history.select_related("history_user").order_by("history_date", "history_id"))
        versions = []
        for previous, record in zip([None, *records[:-1]], records, strict=True):
            changes = [] if previous is None else [
                {"field": c.field, "old": c.old, "new": c.new}
                for c in record.diff_against(previous).changes if c.field not in ("updated_at",)]
            versions.append({"record": record, "changes": changes, "first": previous is None})
        versions.reverse()
        context = {**self.admin_site.each_context(request), "policy": policy,
                   "title": gettext("Versions of %(policy)s") % {"policy": policy},
                   "versions": versions, "opts": self.model._meta}
        return TemplateResponse(request, "admin/escalations/policy/versions.html", context)

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


class ChangeTemplateForm(forms.ModelForm[ChangeTemplate]):
    class Meta:
        model = ChangeTemplate
        fields = ["tenant", "slug", "name", "type", "defaults", "pre_approved", "max_amount_minor", "max_risk_level",
                  "is_active"]

    def clean(self) -> dict[str, Any]:
        """The API's template rules (type has a policy, known default keys), shown next to each field."""
        data = super().clean() or {}
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        if tenant is not None:
            try:
                template_validate(tenant, {k: data[k] for k in ("type", "defaults") if data.get(k) is not None})
            except ValidationFailed as exc:
                for name, problems in (exc.errors or {"__all__": [exc.detail]}).items():
                    self.add_error(name.split(".")[0] if name.split(".")[0] in self.fields else None, problems)
        return data


@admin.register(ChangeTemplate)
class ChangeTemplateAdmin(ServiceBackedHistoryAdmin):
    """Templates / standard changes. Saved through standard_changes.template_upsert: each edit bumps the version
    (cases keep the version they used; the history tab shows every version) and is audited."""

    form = ChangeTemplateForm
    list_display = ("slug", "name", "tenant", "type", "pre_approved", "max_amount_minor", "max_risk_level", "version",
                    "is_active")
    list_filter = ("tenant", "pre_approved", "is_active", "type")
    search_fields = ("slug", "name", "type", "tenant__slug")
    fields = ("tenant", "slug", "name", "type", "defaults", "pre_approved", "max_amount_minor", "max_risk_level",
              "is_active", "version", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: ChangeTemplate | None = None) -> tuple[str, ...]:
        return ("tenant", "slug", "version", "updated_at") if obj else ("version", "updated_at")

    def save_model(self, request: HttpRequest, obj: ChangeTemplate, form: Any, change: bool) -> None:
        data = form.cleaned_data
        fields = {k: data[k] for k in ("name", "type", "defaults", "pre_approved", "is_active") if k in data}
        fields["limits"] = {"max_amount_minor": data.get("max_amount_minor"),
                            "max_risk_level": data.get("max_risk_level") or ""}
        saved, _ = template_upsert(actor=Actor(tenant=obj.tenant, user=request.user),  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
                                   slug=obj.slug, fields=fields)
        obj.pk, obj.version, obj._state.adding = saved.pk, saved.version, False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # cases name the template they were made from; deactivate instead


@admin.register(Escalation)
class EscalationAdmin(PersonalDataAdminMixin, admin.ModelAdmin[Escalation]):
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

    @admin.display(description=gettext_lazy("amount"))
    def amount(self, obj: Escalation) -> str:
        return format_money(obj.amount_minor, obj.currency, obj.tenant.locale)  # tenant: list_select_related

    @admin.display(description=gettext_lazy("decisions"))
    def decisions(self, obj: Escalation) -> str:
        rows = obj.approval.decisions.select_related("decided_by", "on_behalf_of").order_by("decided_at")
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li>{} by {}{} ({}) at stage {}: {}</li>",
            ((d.decision, d.decided_by.username,
              f" on behalf of {d.on_behalf_of.username}" if d.on_behalf_of is not None else "",
              d.role, d.stage + 1, d.justification) for d in rows))) or "—"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*masked_names([f.name for f in Escalation._meta.fields]), "decisions"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # view permission suffices to read; nobody edits a case in the admin


from . import admin_terminology  # noqa: E402,F401  (the language pack: its own module, registered with this admin)
