"""The actions on a condition (obligation): add evidence, mark met, waive (escalations.obligations holds the rules).

Each is one transaction: lock the case, check who acts, change the condition, record the audit event and the
outbox event together (escalations.changes).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.roles import Capability
from audit.actions import AuditAction
from notifications.outbox import catalogue as events
from trustguard.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from trustguard.ids import uuid7

from .changes import audit_state, record_change
from .models import Escalation, EscalationStatus
from .obligations import MAX_EVIDENCE, MAX_NOTE, MAX_URL, MET, WAIVED, iso_z, normalized, refresh_conditions_due
from .services import is_requester, lock_escalation

# --- the actions: evidence, met, waive ---------------------------------------------------------------

def is_approver(actor: Actor, escalation: Escalation) -> bool:
    """A person who may decide this case: escalation.decide and a role of one of its route's stages."""
    if actor.user is None or not actor.can(Capability.ESCALATION_DECIDE):
        return False
    roles = {r for stage in escalation.approval.stages.all() for r in stage.eligible_roles}
    return bool(roles & actor.roles)


def _find(escalation: Escalation, condition_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    conditions = normalized(escalation)
    for c in conditions:
        if c["id"] == condition_id:
            return conditions, c
    raise NotFound("no such condition on this escalation", slug="not-found")


def _locked(actor: Actor, escalation: Escalation | str) -> Escalation:
    return lock_escalation(escalation, actor=actor, related=("tenant", "requested_by_user", "requested_by_api_key"))


def _save(escalation: Escalation, conditions: list[dict[str, Any]], *, actor: Actor, action: AuditAction,
          before: dict[str, Any], event: Any, condition: dict[str, Any], details: dict[str, Any]) -> Escalation:
    escalation.conditions = conditions
    refresh_conditions_due(escalation)
    escalation.save(update_fields=["conditions", "conditions_due_at", "updated_at"])
    record_change(escalation, actor=actor, action=action, before=before, event=event,
                  details={"condition_id": condition["id"], **details},
                  event_extra={"condition": condition})
    return escalation


@transaction.atomic
def condition_add_evidence(*, actor: Actor, escalation: Escalation | str, condition_id: str, note: str = "",
                           url: str = "") -> Escalation:
    """The owner (or the requester, or an approver) adds a note and/or an http(s) link to a condition."""
    escalation = _locked(actor, escalation)
    owner_user = actor.user is not None
    conditions, condition = _find(escalation, condition_id)
    is_owner = owner_user and actor.user is not None and condition.get("owner") == actor.user.username
    if not (is_owner or is_requester(actor, escalation) or is_approver(actor, escalation)):
        raise PermissionDenied("only the condition's owner, the requester or an approver may add evidence",
                               slug="not-condition-owner")
    note, url = (note or "").strip(), (url or "").strip()
    errors: dict[str, list[str]] = {}
    if not note and not url:
        errors["note"] = ["Give a note, a url, or both."]
    if len(note) > MAX_NOTE:
        errors["note"] = [f"At most {MAX_NOTE} characters."]
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > MAX_URL:
            errors["url"] = ["An http(s) URL."]
    if len(condition["evidence"]) >= MAX_EVIDENCE:
        errors["evidence"] = [f"At most {MAX_EVIDENCE} pieces of evidence per condition."]
    if errors:
        raise ValidationFailed("the evidence is invalid: " + ", ".join(sorted(errors)), errors=errors)
    if condition["status"] in (MET, WAIVED):
        raise Conflict(f"the condition is already {condition['status']}", slug="condition-closed")
    before = audit_state(escalation)
    item = {"id": str(uuid7()), "note": note, "url": url, "added_by": actor.actor_label,
            "added_at": iso_z(timezone.now())}
    condition["evidence"] = [*condition["evidence"], item]
    return _save(escalation, conditions, actor=actor, action=AuditAction.CONDITION_EVIDENCE_ADDED, before=before,
                 event=events.ESCALATION_CONDITION_EVIDENCE_ADDED, condition=condition, details={"evidence": item})


def condition_resolve(*, actor: Actor, escalation: Escalation | str, condition_id: str, status: str,
                      justification: str = "") -> Escalation:
    """An approver marks a condition met, or waives it (a justification required). Audited; no step-up."""
    return _resolve(actor=actor, escalation=escalation, condition_id=condition_id, status=status,
                    justification=justification)


@transaction.atomic
def _resolve(*, actor: Actor, escalation: Escalation | str, condition_id: str, status: str,
             justification: str) -> Escalation:
    assert status in (MET, WAIVED)
    escalation = _locked(actor, escalation)
    conditions, condition = _find(escalation, condition_id)
    if not is_approver(actor, escalation) or is_requester(actor, escalation):
        raise PermissionDenied("only an approver of this escalation may mark a condition met or waive it",
                               slug="approver-only")
    justification = (justification or "").strip()
    if status == WAIVED and not justification:
        raise ValidationFailed("waiving a condition needs a justification",
                               errors={"justification": ["This field may not be blank."]})
    if len(justification) > 5000:
        raise ValidationFailed("justification too long", errors={"justification": ["At most 5000 characters."]})
    if condition["status"] in (MET, WAIVED):
        raise Conflict(f"the condition is already {condition['status']}", slug="condition-closed")
    if escalation.status in (EscalationStatus.REJECTED, EscalationStatus.CANCELLED, EscalationStatus.EXPIRED):
        raise Conflict(f"the escalation is {escalation.status}", slug="invalid-state")
    before = audit_state(escalation)
    condition.update({"status": status, "resolved_by": actor.actor_label, "resolved_at": iso_z(timezone.now()),
                      "justification": justification})
    action, event = ((AuditAction.CONDITION_MET, events.ESCALATION_CONDITION_MET) if status == MET
                     else (AuditAction.CONDITION_WAIVED, events.ESCALATION_CONDITION_WAIVED))
    return _save(escalation, conditions, actor=actor, action=action, before=before, event=event,
                 condition=condition, details={"status": status, "justification": justification})
