"""Conditions of an approval as tracked obligations: owner, due date, status, evidence.

A condition is `{id, text, owner, due_at, status: open|met|waived|overdue, evidence: [...]}` in
Escalation.conditions. Decisions still send plain strings (or objects with text, owner?, due_at?); the owner
defaults to the requester and due_at to the policy's condition_due_seconds after the decision. Approvers mark a
condition met or waive it (with a justification); the owner, the requester and approvers add evidence
(a note and/or an http(s) link). While a condition is open or overdue, the case cannot be executed
(409 conditions-unmet); the deadline sweep (pass "conditions") marks overdue ones and raises
escalation.condition_overdue once per condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils.dateparse import parse_datetime

from trustguard.errors import Conflict, ValidationFailed
from trustguard.ids import uuid7

from .models import DEFAULT_CONDITION_DUE_SECONDS, Escalation, EscalationStatus

OPEN, MET, WAIVED, OVERDUE = "open", "met", "waived", "overdue"
UNMET = (OPEN, OVERDUE)
MAX_EVIDENCE = 50
MAX_NOTE = 2000
MAX_URL = 1000
# Cases whose obligations the sweep still watches: closed ones (rejected, expired, cancelled) need none kept.
WATCHED = (EscalationStatus.PENDING, EscalationStatus.ACKNOWLEDGED, EscalationStatus.DEFERRED,
           EscalationStatus.APPROVED)


@dataclass(frozen=True)
class ConditionSpec:
    text: str
    owner: str = ""
    due_at: datetime | None = None


def iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_specs(conditions: Sequence[str | Mapping[str, Any]], *, now: datetime) -> list[ConditionSpec]:
    """A decision's conditions: plain strings, or {text, owner?, due_at?} (400 naming conditions otherwise)."""
    specs: list[ConditionSpec] = []
    for i, item in enumerate(conditions):
        if isinstance(item, str):
            specs.append(ConditionSpec(text=item))
            continue
        if not isinstance(item, Mapping) or set(item) - {"text", "owner", "due_at"} or not isinstance(item.get("text"), str):
            raise ValidationFailed("a condition is a string or {text, owner?, due_at?}",
                                   errors={f"conditions.{i}": ["A string, or an object with text, owner?, due_at?."]})
        owner = item.get("owner") or ""
        if not isinstance(owner, str) or len(owner) > 150:
            raise ValidationFailed("a condition's owner is a username", errors={f"conditions.{i}.owner": ["A username."]})
        due_at = None
        if item.get("due_at") is not None:
            due_at = parse_datetime(str(item["due_at"])) if isinstance(item["due_at"], str) else None
            if due_at is None or due_at.tzinfo is None or due_at <= now:
                raise ValidationFailed("a condition's due_at is a future ISO 8601 time with a zone",
                                       errors={f"conditions.{i}.due_at": ["A future date-time with a time zone."]})
        specs.append(ConditionSpec(text=item["text"], owner=owner.strip(), due_at=due_at))
    return specs


def default_owner(escalation: Escalation) -> str:
    """The requester: their username, or the API key of the source system that asked (never an email: the
    conditions are not sealed, and personal data is, privacy.vault)."""
    if escalation.requested_by_user is not None:
        return str(escalation.requested_by_user.username)
    if escalation.requested_by_api_key is not None:
        return f"api_key:{escalation.requested_by_api_key.name}"
    return ""


def conditions_add(escalation: Escalation, specs: Sequence[ConditionSpec], texts: Sequence[str], *,
                   decided_by: str, now: datetime) -> None:
    """Append a decision's conditions (texts as the engine cleaned them) as open obligations."""
    due_default = now + timedelta(seconds=int(escalation.policy_snapshot.get("condition_due_seconds")
                                              or DEFAULT_CONDITION_DUE_SECONDS))
    added = [{"id": str(uuid7()), "text": text, "owner": spec.owner or default_owner(escalation),
              "due_at": iso_z(spec.due_at or due_default), "status": OPEN, "evidence": [],
              "set_by": decided_by, "set_at": iso_z(now)}
             for spec, text in zip(specs, texts, strict=True)]
    escalation.conditions = [*normalized(escalation), *added]
    refresh_conditions_due(escalation)


def normalized(escalation: Escalation) -> list[dict[str, Any]]:
    """The conditions as objects (a row written before obligations holds plain strings: open, no due date)."""
    return [c if isinstance(c, dict) else {"id": f"legacy-{i}", "text": str(c), "owner": default_owner(escalation),
                                           "due_at": None, "status": OPEN, "evidence": []}
            for i, c in enumerate(escalation.conditions or [])]


def refresh_conditions_due(escalation: Escalation) -> None:
    """conditions_due_at: the earliest due date of an open condition (the overdue sweep's claim column)."""
    dues = [parse_datetime(c["due_at"]) for c in normalized(escalation) if c["status"] == OPEN and c.get("due_at")]
    escalation.conditions_due_at = min((d for d in dues if d is not None), default=None)


def unmet(escalation: Escalation) -> list[dict[str, Any]]:
    return [c for c in normalized(escalation) if c["status"] in UNMET]


def conditions_check(escalation: Escalation) -> None:
    """Refuse (409 conditions-unmet, naming them) an execution while a condition is open or overdue."""
    pending = unmet(escalation)
    if pending:
        raise Conflict(f"{len(pending)} condition(s) of the approval are not met or waived", slug="conditions-unmet",
                       extra={"conditions": [{"id": c["id"], "text": c["text"], "status": c["status"],
                                              "due_at": c.get("due_at")} for c in pending]})


def mark_overdue(escalation: Escalation, now: datetime) -> list[dict[str, Any]]:
    """Open conditions past due become overdue (the sweep); returns those that just did."""
    conditions, newly = normalized(escalation), []
    for c in conditions:
        due = parse_datetime(c["due_at"]) if c["status"] == OPEN and c.get("due_at") else None
        if due is not None and due <= now:
            c["status"] = OVERDUE
            newly.append(c)
    escalation.conditions = conditions
    refresh_conditions_due(escalation)
    return newly
