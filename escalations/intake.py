"""What a new escalation is made of: the request's parts (money, source) and their validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from trustguard.errors import ValidationFailed
from trustguard.jsonutil import canonical_json
from trustguard.phones import normalize_phone

from .models import DEFAULT_MAX_WINDOW_SECONDS, Policy, RiskLevel, Urgency

if TYPE_CHECKING:
    from .models import Escalation

if TYPE_CHECKING:
    from .routing import RouteDecision

MAX_PAYLOAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Money:
    value_minor: int
    currency: str


@dataclass(frozen=True)
class ExecutionWindow:
    starts_at: datetime
    ends_at: datetime


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
                    flags: Sequence[str], payload: dict[str, Any] | None, requested_by: str,
                    estimated_cost: Money | None = None) -> None:
    errors: dict[str, list[str]] = {}
    validate_estimated_cost(estimated_cost, errors)
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
        _money_errors(amount, "amount", errors)
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


def _money_errors(money: Money, name: str, errors: dict[str, list[str]]) -> None:
    if isinstance(money.value_minor, bool) or not isinstance(money.value_minor, int) or money.value_minor < 0:
        errors[f"{name}.value_minor"] = ["A whole, non-negative number of minor units (kobo, cents)."]
    if not (isinstance(money.currency, str) and len(money.currency) == 3 and money.currency.isalpha()
            and money.currency.isupper()):
        errors[f"{name}.currency"] = ["An ISO 4217 code such as NGN."]


def validate_estimated_cost(cost: Money | None, errors: dict[str, list[str]], *, name: str = "estimated_cost") -> None:
    """What the change is expected to cost: whole minor units with its own, explicit currency.

    The currency is never taken from `amount`: a cost in another currency than the amount at stake is allowed,
    because it is stated. The one check, for create, /escalations/check, amendments and actual_cost alike.
    """
    if cost is not None:
        _money_errors(cost, name, errors)


def validate_execution_window(window: ExecutionWindow | None, errors: dict[str, list[str]], *, now: datetime,
                              max_seconds: int = DEFAULT_MAX_WINDOW_SECONDS) -> None:
    """When the approved change may be carried out: ends after it starts, not in the past, at most the policy's
    max_window_seconds long (400 naming execution_window.<part> otherwise)."""
    if window is None:
        return
    if window.ends_at <= window.starts_at:
        errors["execution_window.ends_at"] = ["Must be after starts_at."]
    elif window.ends_at <= now:
        errors["execution_window.ends_at"] = ["Must be in the future."]
    elif window.ends_at - window.starts_at > timedelta(seconds=max_seconds):
        errors["execution_window"] = [f"At most {max_seconds} seconds long (the policy's max_window_seconds)."]


def estimated_cost_of(escalation: Escalation) -> Money | None:
    """The request's estimated cost (None when not given): what routing conditions read."""
    if escalation.estimated_cost_minor is None:
        return None
    return Money(value_minor=escalation.estimated_cost_minor, currency=escalation.estimated_cost_currency)
