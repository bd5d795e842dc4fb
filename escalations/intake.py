"""What a new escalation is made of: the request's parts (money, source) and their validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from trustguard.errors import ValidationFailed
from trustguard.jsonutil import canonical_json
from trustguard.phones import normalize_phone

from .models import Policy, RiskLevel, Urgency

if TYPE_CHECKING:
    from .routing import RouteDecision

MAX_PAYLOAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Money:
    value_minor: int
    currency: str


@dataclass(frozen=True)
class SourceRef:
    system: str
    entity_type: str
    entity_id: str
    url: str = ""


@dataclass
class CheckResult:
    requires_escalation: bool
    type: str | None = None
    reason: str = ""
    risk_level: str | None = None
    approvals_required: int = 0
    route: list[dict[str, Any]] = field(default_factory=list)
    policy: Policy | None = None
    plan: RouteDecision | None = None  # every stage of the route, applying or not (routing.route_for_request)


def clean_contact(contact: dict[str, str] | None, errors: dict[str, list[str]]) -> dict[str, str]:
    """A customer to keep informed: optional email and phone (stored in E.164)."""
    if not contact:
        return {}
    cleaned: dict[str, str] = {}
    unknown = set(contact) - {"email", "phone", "name"}
    if unknown:
        errors["contact"] = [f"Unknown keys: {', '.join(sorted(unknown))}; use email, phone, name."]
    if contact.get("email"):
        try:
            validate_email(contact["email"])
            cleaned["email"] = contact["email"]
        except DjangoValidationError:
            errors["contact.email"] = ["Enter a valid email address."]
    if contact.get("phone"):
        try:
            cleaned["phone"] = normalize_phone(str(contact["phone"]), field="contact.phone")
        except ValidationFailed as exc:
            errors.update(exc.errors or {})
    if contact.get("name"):
        cleaned["name"] = str(contact["name"])[:200]
    return cleaned


def validate_create(reason: str, source: SourceRef, amount: Money | None, risk_level: str | None, urgency: str,
                    flags: Sequence[str], payload: dict[str, Any] | None, requested_by: str) -> None:
    errors: dict[str, list[str]] = {}
    if requested_by:
        try:
            validate_email(requested_by)
        except DjangoValidationError:
            errors["requested_by"] = ["The requester's email address."]
    if not (reason or "").strip():
        errors["reason"] = ["This field may not be blank."]
    for name in ("system", "entity_type", "entity_id"):
        if not str(getattr(source, name) or "").strip():
            errors[f"source.{name}"] = ["This field may not be blank."]
    if amount is not None:
        if isinstance(amount.value_minor, bool) or not isinstance(amount.value_minor, int) or amount.value_minor < 0:
            errors["amount.value_minor"] = ["A whole, non-negative number of minor units (kobo, cents)."]
        if not (isinstance(amount.currency, str) and len(amount.currency) == 3 and amount.currency.isalpha()
                and amount.currency.isupper()):
            errors["amount.currency"] = ["An ISO 4217 code such as NGN."]
    if risk_level is not None and risk_level not in RiskLevel.values:
        errors["risk_level"] = ["Choose low, medium or high."]
    if urgency not in Urgency.values:
        errors["urgency"] = ["Choose low, normal, high or critical."]
    if any(not isinstance(f, str) or not f.strip() for f in flags):
        errors["flags"] = ["Flags are non-blank strings."]
    if payload is not None and len(canonical_json(payload).encode()) > MAX_PAYLOAD_BYTES:
        errors["payload"] = [f"At most {MAX_PAYLOAD_BYTES // 1024} KiB."]
    if errors:
        raise ValidationFailed("the escalation request is invalid: " + ", ".join(sorted(errors)), errors=errors)
