"""Templates and standard changes: defaults for a new escalation, and pre-approval within limits.

A template (models.ChangeTemplate) gives a new escalation its type, reason, risk, urgency, payload hints and
a standard justification. A `pre_approved` template makes a request within its limits (max_amount_minor on
the amount and the estimated cost, max_risk_level) `approved` at once, recorded as pre-approved by that
template *version* (Escalation.template, the audit event, the escalation.approved event). Outside the
limits the request follows its policy's normal route: never an error. Every change of a template bumps
its version; simple-history keeps each one, and a case keeps the version it was made from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from accounts.actors import Actor
from accounts.models import Tenant
from audit.actions import AuditAction
from audit.services import audit_record
from trustguard.errors import NotFound, ValidationFailed
from trustguard.locks import for_update

from .intake import Money
from .models import ChangeTemplate, Policy, RiskLevel, Urgency

RISK_ORDER = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2}
DEFAULT_KEYS = {"reason", "risk_level", "urgency", "payload", "payload_schema", "justification"}
EDITABLE = ("name", "type", "defaults", "pre_approved", "limits", "is_active")


@dataclass(frozen=True)
class Applied:
    """A create request's fields once the template's defaults filled what the request left out."""

    template: ChangeTemplate | None
    type: str | None
    reason: str
    risk_level: str | None
    urgency: str
    payload: dict[str, Any] | None


def template_get(*, tenant: Tenant, slug: str) -> ChangeTemplate:
    template = ChangeTemplate.objects.filter(tenant=tenant, slug=slug).first()
    if template is None:
        raise NotFound(f"no template {slug}", slug="not-found")
    return template


def template_apply(*, tenant: Tenant, slug: str | None, type: str | None, reason: str, risk_level: str | None,
                   urgency: str, payload: dict[str, Any] | None) -> Applied:
    """The request with the template's defaults applied (the request's own values win; payloads merge)."""
    if not slug:
        return Applied(None, type, reason, risk_level, urgency, payload)
    template = ChangeTemplate.objects.filter(tenant=tenant, slug=slug, is_active=True).first()
    if template is None:
        raise ValidationFailed(f"no active template {slug}", errors={"template": [f"No active template {slug!r}."]})
    if type and type != template.type:
        raise ValidationFailed("the template is for another type",
                               errors={"type": [f"Template {slug} creates {template.type}; omit type or send it."]})
    defaults = template.defaults or {}
    merged = {**(defaults.get("payload") or {}), **(payload or {})} if (payload or defaults.get("payload")) else payload
    return Applied(template, template.type, reason or str(defaults.get("reason") or ""),
                   risk_level or defaults.get("risk_level") or None,
                   urgency if urgency != Urgency.NORMAL else str(defaults.get("urgency") or Urgency.NORMAL), merged)


def within_limits(template: ChangeTemplate, *, amount: Money | None, estimated_cost: Money | None,
                  risk_level: str) -> bool:
    """A pre-approved template covers this request: amount, estimated cost and risk within its limits."""
    if not template.pre_approved:
        return False
    if template.max_amount_minor is not None:
        for money in (amount, estimated_cost):
            if money is not None and money.value_minor > template.max_amount_minor:
                return False
    ceiling = RISK_ORDER[RiskLevel(template.max_risk_level)] if template.max_risk_level else None
    return ceiling is None or RISK_ORDER.get(RiskLevel(risk_level), 99) <= ceiling


def template_record(template: ChangeTemplate, *, pre_approved: bool) -> dict[str, Any]:
    """What a case keeps of the template it was made from (Escalation.template): its version, as it was."""
    return {"slug": template.slug, "name": template.name, "version": template.version, "pre_approved": pre_approved}


def template_dict(template: ChangeTemplate) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if template.max_amount_minor is not None:
        limits["max_amount_minor"] = template.max_amount_minor
    if template.max_risk_level:
        limits["max_risk_level"] = template.max_risk_level
    return {"slug": template.slug, "name": template.name, "type": template.type, "defaults": template.defaults or {},
            "pre_approved": template.pre_approved, "limits": limits, "is_active": template.is_active,
            "version": template.version,
            "updated_at": template.updated_at.isoformat().replace("+00:00", "Z") if template.updated_at else None}


def template_validate(tenant: Tenant, fields: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise a template's editable fields (400 naming each bad one); limits become columns."""
    errors: dict[str, list[str]] = {}
    out = dict(fields)
    if "type" in out and not Policy.objects.filter(tenant=tenant, type=out["type"], is_active=True).exists():
        errors["type"] = [f"No active policy for type {out['type']}."]
    defaults = out.get("defaults")
    if defaults is not None:
        unknown = set(defaults) - DEFAULT_KEYS
        if unknown:
            errors["defaults"] = [f"Unknown keys: {', '.join(sorted(unknown))}; use {', '.join(sorted(DEFAULT_KEYS))}."]
        if defaults.get("risk_level") not in (None, *RiskLevel.values):
            errors["defaults.risk_level"] = ["Choose low, medium or high."]
        if defaults.get("urgency") not in (None, *Urgency.values):
            errors["defaults.urgency"] = ["Choose low, normal, high or critical."]
        for key in ("payload", "payload_schema"):
            if defaults.get(key) is not None and not isinstance(defaults[key], dict):
                errors[f"defaults.{key}"] = ["An object."]
        for key in ("reason", "justification"):
            if defaults.get(key) is not None and not isinstance(defaults[key], str):
                errors[f"defaults.{key}"] = ["A string."]
    limits = out.pop("limits", None)
    if limits is not None:
        out["max_amount_minor"] = limits.get("max_amount_minor")
        out["max_risk_level"] = limits.get("max_risk_level") or ""
    if errors:
        raise ValidationFailed("the template is invalid: " + ", ".join(sorted(errors)), errors=errors)
    return out


@transaction.atomic
def template_upsert(*, actor: Actor, slug: str, fields: dict[str, Any]) -> tuple[ChangeTemplate, bool]:
    """Create or change a template; a change bumps its version. Audited. Returns (it, created).

    Who may: policy.manage (the API checks it, as for policies); the admin's operators.
    """
    cleaned = template_validate(actor.tenant, fields)
    template = for_update(ChangeTemplate.objects.filter(tenant=actor.tenant, slug=slug)).first()
    created = template is None
    if template is None:
        missing = [name for name in ("name", "type") if name not in cleaned]
        if missing:
            raise ValidationFailed("a new template needs name and type",
                                   errors={name: ["This field is required."] for name in missing})
        template = ChangeTemplate(tenant=actor.tenant, slug=slug)
        before = None
    else:
        before = template_dict(template)
        template.version += 1
    for name, value in cleaned.items():
        setattr(template, name, value)
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        raise ValidationFailed("the template was created concurrently; retry",
                               errors={"slug": ["Taken; retry as an edit."]}) from None
    audit_record(tenant_id=actor.tenant.pk, action=AuditAction.TEMPLATE_CHANGED, actor=actor,
                 target_type="change_template", target_id=template.slug, before=before,
                 after=template_dict(template), details={"version": template.version})
    return template, created
