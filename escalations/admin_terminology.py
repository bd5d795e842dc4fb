"""The admin of a tenant's language pack: its words for roles, types, reasons and statuses (Term), its own
message templates (notifications.MessageTemplate), and a preview of a message as its people would read it.

Every save is audited (accounts.admin.audited_save); the cached terms and templates are forgotten on save
(signals in escalations.terminology and notifications.messages).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db import transaction
from django.forms.models import model_to_dict
from django.http import HttpRequest, HttpResponse
from django.template import Engine, TemplateSyntaxError
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext

from accounts.admin import ServiceBackedHistoryAdmin, audited_save, operator_actor
from accounts.models import Tenant
from accounts.selectors import tenant_roles
from audit.actions import AuditAction
from audit.services import audit_record
from notifications.messages import render_message
from notifications.models import MessageTemplate
from notifications.outbox import catalogue
from trustguard.links import case_url
from trustguard.money import format_money

from .models import Policy, Term
from .terminology import STATUS_LABELS, label, lazy_label

PREVIEW_EVENTS = [catalogue.ESCALATION_CREATED.type, catalogue.ESCALATION_ESCALATED.type,
                  catalogue.ESCALATION_APPROVED.type, catalogue.ESCALATION_REJECTED.type]


@admin.register(Term)
class TermAdmin(ServiceBackedHistoryAdmin):
    list_display = ("kind", "key", "language", "label", "tenant")
    list_filter = ("tenant", "kind", "language")
    search_fields = ("key", "label", "tenant__slug")
    change_list_template = "admin/escalations/term/change_list.html"

    def save_model(self, request: HttpRequest, obj: Term, form: Any, change: bool) -> None:
        audited_save(request, obj, tenant=obj.tenant, action=AuditAction.TERMINOLOGY_CHANGED, target_type="term")

    def delete_model(self, request: HttpRequest, obj: Term) -> None:
        with transaction.atomic():
            audit_record(tenant_id=obj.tenant_id, action=AuditAction.TERMINOLOGY_CHANGED,
                         actor=operator_actor(request, obj.tenant), target_type="term", target_id=obj.pk,
                         before=model_to_dict(obj), after=None)
            obj.delete()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is not None  # one at a time, audited (no bulk delete action that would skip the audit)

    def get_urls(self) -> list[Any]:
        return [path("preview/", self.admin_site.admin_view(preview_view), name="escalations_term_preview"),
                *super().get_urls()]


class MessageTemplateForm(forms.ModelForm[MessageTemplate]):
    class Meta:
        model = MessageTemplate
        fields = ("tenant", "channel", "audience", "event_type", "language", "subject", "body")

    def clean(self) -> dict[str, Any]:
        """A template that does not parse is refused here, naming the field, never at sending time."""
        data = super().clean() or {}
        engine = Engine(builtins=["django.templatetags.i18n"])
        for name in ("subject", "body"):
            try:
                engine.from_string(data.get(name) or "")
            except TemplateSyntaxError as exc:
                self.add_error(name, gettext("Not a valid template: %(why)s") % {"why": exc})
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin[MessageTemplate]):
    form = MessageTemplateForm
    list_display = ("channel", "audience", "event_type", "language", "subject", "tenant", "updated_at")
    list_filter = ("tenant", "channel", "audience", "language")
    search_fields = ("event_type", "subject", "body", "tenant__slug")

    def save_model(self, request: HttpRequest, obj: MessageTemplate, form: Any, change: bool) -> None:
        tenant = Tenant.objects.get(pk=obj.tenant_id)
        audited_save(request, obj, tenant=tenant, action=AuditAction.MESSAGE_TEMPLATE_CHANGED,
                     target_type="message_template")

    def delete_model(self, request: HttpRequest, obj: MessageTemplate) -> None:
        tenant = Tenant.objects.get(pk=obj.tenant_id)
        with transaction.atomic():
            audit_record(tenant_id=tenant.pk, action=AuditAction.MESSAGE_TEMPLATE_CHANGED,
                         actor=operator_actor(request, tenant), target_type="message_template", target_id=obj.pk,
                         before=model_to_dict(obj), after=None)
            obj.delete()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is not None


def sample_context(tenant: Tenant, type_: str = "") -> dict[str, Any]:
    """A message's context as escalations.notify builds it, for an example case of this tenant (of `type_`)."""
    policies = Policy.objects.filter(tenant=tenant, is_active=True).order_by("type")
    policy = policies.filter(type=type_).first() or policies.first()
    # A first stage of named people only (issue 22) has no role: the sample speaks of the default one.
    role = (policy.route[0]["roles"] or ["compliance_officer"])[0] if policy and policy.route else "compliance_officer"
    type_ = policy.type if policy else "HIGH_VALUE"
    reason = (Term.objects.filter(tenant=tenant, kind=Term.Kind.REASON).values_list("key", flat=True).first()
              or "flag vendor_flagged")
    money = format_money(250_000_000, "NGN", tenant.locale)
    now = timezone.now()
    return {
        "tenant_name": tenant.name, "escalation_id": "00000000-0000-0000-0000-000000000000", "type": type_,
        "title": policy.name if policy else type_, "type_label": lazy_label(Term.Kind.ESCALATION_TYPE, type_, tenant=tenant.pk),
        "reason": lazy_label(Term.Kind.REASON, reason, tenant=tenant.pk),
        "status": "pending", "status_label": lazy_label(Term.Kind.STATUS, "pending", tenant=tenant.pk),
        "role": role, "role_label": lazy_label(Term.Kind.ROLE, role, tenant=tenant.pk),
        "amount": {"value_minor": 250_000_000, "currency": "NGN"}, "money": money, "entity": "order ORD-1001",
        "what": f"{money} order ORD-1001", "source": {"system": "shop", "entity_type": "order", "entity_id": "ORD-1001"},
        "decision": {}, "requester_name": "buyer@shop.example", "url": case_url("00000000-0000-0000-0000-000000000000"),
        "requested_through": "shop", "stage_number": 1, "stage_opened": False, "escalation_level": 0,
        "expires_at": now + timedelta(hours=24), "ack_due_at": now + timedelta(hours=1),
        "defer_until": None, "cancel_reason": "",
        # the customer's
        "entity_type": "order", "entity_id": "ORD-1001", "outcome": "", "answer_within_hours": 24,
    }


def _choice(request: HttpRequest, name: str, allowed: list[str]) -> str:
    """A query parameter among `allowed`, else the first of them."""
    value = request.GET.get(name, "")
    return value if value in allowed else allowed[0]


def preview_view(request: HttpRequest) -> HttpResponse:
    """A message rendered with a tenant's terms and templates in a language, beside its labels."""
    tenants = list(Tenant.objects.order_by("name"))
    tenant = next((t for t in tenants if str(t.pk) == request.GET.get("tenant")), tenants[0] if tenants else None)
    languages = [code for code, _ in settings.LANGUAGES]
    language = request.GET.get("language") or (tenant.language if tenant and tenant.language else languages[0])
    language = language if language in languages else languages[0]
    channel = _choice(request, "channel", ["email", "sms", "in_app"])
    audience = _choice(request, "audience", ["approver", "requester", "customer"])
    event_type = _choice(request, "event_type", PREVIEW_EVENTS)
    types = list(Policy.objects.filter(tenant=tenant, is_active=True).order_by("type").values_list("type", flat=True))
    type_ = request.GET.get("type") or ("HIGH_VALUE" if "HIGH_VALUE" in types else "")
    context: dict[str, Any] = {**admin.site.each_context(request), "title": gettext("Terminology and messages: preview"),
                               "tenants": tenants, "tenant": tenant, "languages": settings.LANGUAGES,
                               "language": language, "channel": channel, "audience": audience, "event_type": event_type,
                               "events": PREVIEW_EVENTS, "types": types, "type": type_, "opts": Term._meta}
    if tenant is not None:
        context["message"] = render_message(channel=channel, audience=audience, event_type=event_type,
                                            context=sample_context(tenant, type_), tenant_id=tenant.pk, language=language)
        context["labels"] = [
            ("Role", key, label(Term.Kind.ROLE, key, tenant=tenant, language=language)) for key in tenant_roles(tenant=tenant)
        ] + [("Status", key, label(Term.Kind.STATUS, key, tenant=tenant, language=language)) for key in STATUS_LABELS] + [
            (Term.Kind(kind).label, key, label(kind, key, tenant=tenant, language=language))
            for kind, key in Term.objects.filter(tenant=tenant, kind__in=[Term.Kind.ESCALATION_TYPE, Term.Kind.REASON])
            .order_by("kind", "key").values_list("kind", "key").distinct()]
    return TemplateResponse(request, "admin/escalations/term/preview.html", context)
