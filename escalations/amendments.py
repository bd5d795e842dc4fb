"""Amendments: the requester corrects an open case instead of cancelling it and starting over.

The rules (README "Amendments"):
1. Only the requester (the same person, or the same tenant API key) amends, only an open case (pending,
   acknowledged, deferred: 409 otherwise), always with a justification (400 when blank).
2. Only the fields in AMENDABLE_FIELDS change, validated with the same normalisation as a new request
   (escalations.intake.validate_create on the case as it would become).
3. Approvals given before are dismissed (approvals.services.is_dismissed: kept, counted for nothing), the route
   starts again at its first stage, re-evaluated for the new content (risk level -> approvals needed).
4. Policy version pinning (amendment_policy): the case keeps the policy version it started under, unless the
   type's current policy says `amendments_take_current_version`; then the amendment moves the case to it.
5. The revision goes up: one-time codes are bound to it (services.content_hash), so a code issued for the old
   content never decides the new one.
6. One transaction: the locked case, the restarted approval request, the Amendment row (the diff), the audit
   event and the `escalation.amended` event (approvers who had approved are told: escalations.notify).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.actors import Actor
from approvals.services import approval_lock, approval_restart
from audit.actions import AuditAction
from notifications.outbox import catalogue as events
from privacy.vault import record_link, seal_case
from trustguard.errors import Conflict, DomainError, PermissionDenied, ValidationFailed

from .changes import (
    audit_state,
    close,
    end_deferral,
    open_for_acknowledgement,
    record_change,
    refresh_next_deadline,
    sync_from_approval,
)
from .conditions import escalation_facts
from .intake import ExecutionWindow, Money, SourceRef, validate_create, validate_execution_window
from .models import DEFAULT_MAX_WINDOW_SECONDS, OPEN_STATUSES, Amendment, Escalation, EscalationStatus, Policy
from .policies import policy_snapshot
from .routing import route_for_request

# THE list of what a requester may amend (API, dashboard form and validation all read it). A field that is one
# model attribute of the same name needs nothing more; others have an accessor in _ACCESS below.
AMENDABLE_FIELDS: tuple[str, ...] = ("reason", "amount", "risk_level", "payload", "estimated_cost", "execution_window")
MAX_JUSTIFICATION = 5000


@dataclass(frozen=True)
class _Access:
    read: Callable[[Escalation], Any]
    write: Callable[[Escalation, Any], None]
    # The value as the diff keeps it (JSON) and compares it with `read`; the API's own value when None.
    normal: Callable[[Any], Any] | None = None


def _write_amount(e: Escalation, value: Mapping[str, Any] | None) -> None:
    e.amount_minor, e.currency = (value["value_minor"], value["currency"]) if value else (None, "")


def _write_payload(e: Escalation, value: Mapping[str, Any] | None) -> None:
    # Personal payload fields are sealed as on creation (privacy.vault), under the customer's key.
    sealed = seal_case(tenant_id=e.tenant_id, contact=None, payload=dict(value or {}))
    e.payload = sealed.payload
    if sealed.subject is not None:
        record_link(subject=sealed.subject, record_type="escalation", record_id=e.pk)


def _write_cost(e: Escalation, value: Mapping[str, Any] | None) -> None:
    e.estimated_cost_minor, e.estimated_cost_currency = (value["value_minor"], value["currency"]) if value else (None, "")


def _iso(moment: Any) -> str:
    when = parse_datetime(moment) if isinstance(moment, str) else moment
    return when.astimezone(UTC).isoformat() if when is not None else str(moment)


def _window_normal(value: Mapping[str, Any] | None) -> dict[str, str] | None:
    return {"starts_at": _iso(value["starts_at"]), "ends_at": _iso(value["ends_at"])} if value else None


def _write_window(e: Escalation, value: Mapping[str, Any] | None) -> None:
    e.window_starts_at, e.window_ends_at = ((parse_datetime(value["starts_at"]), parse_datetime(value["ends_at"]))
                                            if value else (None, None))


_ACCESS: dict[str, _Access] = {
    "reason": _Access(lambda e: e.reason, lambda e, v: setattr(e, "reason", str(v).strip())),
    "amount": _Access(lambda e: ({"value_minor": e.amount_minor, "currency": e.currency}
                                 if e.amount_minor is not None else None), _write_amount),
    "payload": _Access(lambda e: e.payload or {}, _write_payload),
    "estimated_cost": _Access(lambda e: ({"value_minor": e.estimated_cost_minor, "currency": e.estimated_cost_currency}
                                         if e.estimated_cost_minor is not None else None), _write_cost),
    "execution_window": _Access(lambda e: (_window_normal({"starts_at": e.window_starts_at, "ends_at": e.window_ends_at})
                                           if e.window_starts_at is not None else None), _write_window,
                                normal=_window_normal),
}


def _access(field: str) -> _Access:
    return _ACCESS.get(field) or _Access(lambda e: getattr(e, field), lambda e, v: setattr(e, field, v))


def amendable_values(escalation: Escalation) -> dict[str, Any]:
    """The amendable fields of a case as they are now (the form's initial values, the diff's "before")."""
    return {field: _access(field).read(escalation) for field in AMENDABLE_FIELDS}


def amendment_policy(escalation: Escalation) -> tuple[dict[str, Any], int]:
    """THE pinning rule: the policy snapshot (and its version) an amended case is evaluated under.

    The version the case started under stays pinned (an amendment corrects the request, not the rules it is
    judged by), unless the type's current policy has amendments_take_current_version.
    """
    current = Policy.objects.filter(tenant_id=escalation.tenant_id, type=escalation.type, is_active=True).first()
    if current is not None and current.amendments_take_current_version:
        return policy_snapshot(current), current.version
    return escalation.policy_snapshot, escalation.policy_version


def _clean(changes: Mapping[str, Any], justification: str) -> tuple[dict[str, Any], str]:
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(changes) - set(AMENDABLE_FIELDS))
    for name in unknown:
        errors[name] = [f"Not amendable; amend {', '.join(AMENDABLE_FIELDS)}."]
    justification = (justification or "").strip()
    if not justification:
        errors["justification"] = ["Say why the request changes; this field may not be blank."]
    elif len(justification) > MAX_JUSTIFICATION:
        errors["justification"] = [f"At most {MAX_JUSTIFICATION} characters."]
    if not changes:
        errors.setdefault("non_field_errors", []).append(f"Change at least one of {', '.join(AMENDABLE_FIELDS)}.")
    if errors:
        raise ValidationFailed("the amendment is invalid: " + ", ".join(sorted(errors)), errors=errors)
    normal = {name: (_access(name).normal or (lambda v: v)) for name in changes}
    return {name: normal[name](value) for name, value in changes.items()}, justification


def _validate_as_create(escalation: Escalation, new: dict[str, Any], changed: Collection[str], *,
                        snapshot: Mapping[str, Any], now: datetime) -> None:
    """The case as it would become, through the very checks of a new request (escalations.intake). A window is
    checked when it changes (an unchanged one may have opened already)."""
    amount, cost, window = new["amount"], new["estimated_cost"], new["execution_window"]
    validate_create(
        reason=str(new["reason"] or ""),
        source=SourceRef(escalation.source_system, escalation.source_entity_type, escalation.source_entity_id),
        amount=Money(amount["value_minor"], amount["currency"]) if amount else None,
        risk_level=new["risk_level"], urgency=escalation.urgency, flags=escalation.flags,
        payload=new["payload"] if isinstance(new["payload"], dict) else None, requested_by="",
        estimated_cost=Money(cost["value_minor"], cost["currency"]) if cost else None)
    if not isinstance(new["payload"], dict):
        raise ValidationFailed("payload must be an object", errors={"payload": ["An object."]})
    if "execution_window" in changed and window:
        errors: dict[str, list[str]] = {}
        validate_execution_window(
            ExecutionWindow(parse_datetime(window["starts_at"]), parse_datetime(window["ends_at"])),  # type: ignore[arg-type]  # _window_normal wrote ISO datetimes
            errors, now=now, max_seconds=int(snapshot.get("max_window_seconds") or DEFAULT_MAX_WINDOW_SECONDS))
        if errors:
            raise ValidationFailed("execution_window is invalid: " + ", ".join(sorted(errors)), errors=errors)


def escalation_amend(*, actor: Actor, escalation: Escalation | str, changes: Mapping[str, Any],
                     justification: str) -> Escalation:
    """Amend an open case (module docstring); returns it as committed. Past expires_at: 409 (it expires first)."""
    result = _amend(actor=actor, escalation=escalation, changes=changes, justification=justification)
    if isinstance(result, DomainError):
        raise result  # after the commit: the case's expiry stands
    return result


@transaction.atomic
def _amend(*, actor: Actor, escalation: Escalation | str, changes: Mapping[str, Any],
           justification: str) -> Escalation | DomainError:
    from .services import deadline_passed, is_requester, lock_escalation  # services builds on nothing here

    changes, justification = _clean(changes, justification)
    # Locked in the same order as a decision (the case, then its approval request): an amendment and a decision
    # on one case run one after the other, never interleaved (tests/escalations/test_amendments.py races them).
    escalation = lock_escalation(escalation, actor=actor)
    if not is_requester(actor, escalation):
        raise PermissionDenied("only the requester may amend an escalation", slug="requester-only")
    now = timezone.now()
    passed = deadline_passed(escalation, now)
    if passed is not None:
        return passed
    if escalation.status not in OPEN_STATUSES:
        raise Conflict(f"an escalation that is {escalation.status} cannot be amended (only pending, acknowledged or "
                       "deferred ones)", slug="invalid-state")
    before_values = amendable_values(escalation)
    new = {**before_values, **changes}
    _validate_as_create(escalation, new, changes, snapshot=amendment_policy(escalation)[0], now=now)
    diff = {field: {"before": before_values[field], "after": changes[field]} for field in AMENDABLE_FIELDS
            if field in changes and changes[field] != before_values[field]}
    if not diff:
        raise ValidationFailed("the amendment changes nothing", slug="nothing-to-amend",
                               errors={"non_field_errors": ["Every value given equals the current one."]})

    before = audit_state(escalation)
    for field in diff:
        _access(field).write(escalation, changes[field])
    if "payload" in diff:
        diff["payload"]["after"] = escalation.payload  # as stored: personal fields sealed
    snapshot, version = amendment_policy(escalation)
    policy_version_before = escalation.policy_version
    escalation.policy_snapshot, escalation.policy_version = snapshot, version
    escalation.revision += 1

    # The route is evaluated again from the amended request (routing.route_for_request, as at creation: an amount
    # crossing a condition's threshold adds or drops a stage) and pinned with the snapshot.
    plan = route_for_request(snapshot=snapshot, risk_level=escalation.risk_level, facts=escalation_facts(escalation))
    escalation.policy_snapshot = {**snapshot, "route_plan": plan.pinned(escalation.tenant.locale)}
    approval, _stage = approval_lock(escalation.approval_id)
    stages, dismissed = approval_restart(request=approval, stages=plan.specs())
    escalation.approval = approval
    first = next(s for s in stages if s.index == approval.current_stage)
    sync_from_approval(escalation, approval, first)
    if escalation.status == EscalationStatus.DEFERRED:
        end_deferral(escalation, now)
    auto_approved = approval.status == approval.Status.APPROVED
    if auto_approved:
        close(escalation, EscalationStatus.APPROVED, now)
    else:
        open_for_acknowledgement(escalation, now)  # the first stage is asked again, level 0, a fresh ack window
        refresh_next_deadline(escalation)
    escalation.save()

    amendment = Amendment.objects.create(
        tenant_id=escalation.tenant_id, escalation=escalation, revision=escalation.revision,
        author_user=actor.user, author_api_key=actor.api_key, justification=justification, changes=diff,
        dismissed_decisions=[str(d.pk) for d in dismissed], policy_version_before=policy_version_before,
        policy_version_after=version)
    amendment_data = {
        "id": str(amendment.pk), "revision": escalation.revision, "fields": sorted(diff),
        "justification": justification, "policy_version": version,
        "dismissed_approvals": [{"id": str(d.pk), "decided_by": d.decided_by.username, "user_id": d.decided_by_id}
                                for d in dismissed],
    }
    # The audit row names what changed, not the payload's values (they may be personal; the Amendment row keeps
    # them, sealed where personal).
    audit_changes = {field: ({"changed": True} if field == "payload" else values) for field, values in diff.items()}
    record_change(escalation, actor=actor, action=AuditAction.ESCALATION_AMENDED, before=before,
                  event=events.ESCALATION_AMENDED,
                  details={"amendment": str(amendment.pk), "revision": escalation.revision, "changes": audit_changes,
                           "justification": justification, "dismissed_decisions": amendment.dismissed_decisions,
                           "policy_version": {"before": policy_version_before, "after": version}},
                  event_extra={"amendment": amendment_data, **({"auto_approved": True} if auto_approved else {})})
    if auto_approved:
        record_change(escalation, actor=actor, action=AuditAction.ESCALATION_APPROVED, before=None,
                      event=events.ESCALATION_APPROVED, details={"auto_approved": True, "after_amendment": True},
                      event_extra={"auto_approved": True})
    return escalation


def amendments_of(escalation: Escalation) -> list[Amendment]:
    return list(escalation.amendments.select_related("author_user", "author_api_key").order_by("created_at", "id"))
