"""What a requester known only by email may see of their case, through the signed link emailed to them
(trustguard.links.requester_status_url; the page is dashboard/requester_status.py): read-only, in role terms.

No approver's name or username, no customer's contact or payload: what was asked, where it stands, what it still
needs (escalations.waiting's reading, kept to the role and the count), and the outcome with the decider's reason
and conditions, which the requester's email already carries (notifications/.../email/requester/default.*).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.utils.crypto import constant_time_compare

from approvals.models import Decision
from privacy.vault import SEALED_REQUESTER, requested_by_of
from trustguard.links import requester_email_digest

from .models import Escalation, EscalationStatus
from .named import stage_names
from .waiting import WaitingKind, escalation_waiting_for

# The decision a final status was reached by (its reason is what the requester's email quotes).
_DECIDED_BY: dict[str, str] = {EscalationStatus.APPROVED: Decision.Kind.APPROVE, EscalationStatus.EXECUTED: Decision.Kind.APPROVE,
               EscalationStatus.REJECTED: Decision.Kind.REJECT}


def emailed_requester(escalation: Escalation) -> bool:
    """Is the requester someone outside the tenant, known only by the email a source system gave (no account, so
    no case page: they get the status link)?"""
    return escalation.requested_by_user_id is None and escalation.requested_by_email == SEALED_REQUESTER


def requester_status_case(*, escalation_id: str, email_digest: str) -> Escalation | None:
    """The case a status link names, when its requester is still the person the link was made for; None when the
    case is gone, its requester was erased (privacy: requested_by_of reads nothing) or is someone else now."""
    try:
        pk = uuid.UUID(escalation_id)
    except ValueError:
        return None
    escalation = Escalation.objects.select_related("tenant").filter(pk=pk).first()
    if escalation is None or not emailed_requester(escalation):
        return None
    email = requested_by_of(escalation)
    if not email or not constant_time_compare(requester_email_digest(email), email_digest):
        return None
    return escalation


@dataclass(frozen=True)
class RequesterStatus:
    escalation: Escalation
    waiting_kind: str  # a WaitingKind value (NOTHING once final)
    role: str  # the role asked now ("" once final)
    approvals_missing: int
    also_named_people: bool  # the current stage also asks people by name (never named here)
    outcome: Decision | None  # the approval or rejection that closed the case (its reason, conditions, role, time)
    closed_at: datetime | None


def requester_status(escalation: Escalation) -> RequesterStatus:
    """Where the case stands, as its requester may read it."""
    if escalation.is_final:
        kind = _DECIDED_BY.get(escalation.status)
        outcome = (Decision.objects.filter(request_id=escalation.approval_id, decision=kind)
                   .order_by("-decided_at", "-id").first() if kind is not None else None)
        return RequesterStatus(escalation=escalation, waiting_kind=WaitingKind.NOTHING, role="", approvals_missing=0,
                               also_named_people=False, outcome=outcome,
                               closed_at=escalation.decided_at or escalation.closed_at)
    waiting = escalation_waiting_for(escalation)
    return RequesterStatus(escalation=escalation, waiting_kind=waiting.kind, role=waiting.role or "",
                           approvals_missing=waiting.approvals_missing,
                           also_named_people=bool(stage_names(escalation)), outcome=None, closed_at=None)
