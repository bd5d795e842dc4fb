"""What a requester known only by email may see of their case, through the signed link emailed to them
(trustguard.links.requester_status_url; the page is dashboard/requester_status.py): read-only, in role terms.

No approver's name or username, no customer's contact or payload: what was asked, where it stands, what it still
needs (escalations.waiting's reading, kept to the role and the count), the questions an approver asked them (by
role) that they may answer there (comments.comment_answer_by_emailed_requester), and the outcome with the decider's
reason and conditions, which the requester's email already carries (notifications/.../email/requester/default.*).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.utils.crypto import constant_time_compare

from accounts.models import User
from accounts.selectors import user_roles
from approvals.models import Decision
from privacy.vault import requested_by_of
from trustguard.links import requester_email_digest

from .comments import comments_of, emailed_requester
from .models import OPEN_STATUSES, Comment, Escalation, EscalationStatus
from .named import stage_names
from .waiting import WaitingKind, escalation_waiting_for

# The decision a final status was reached by (its reason is what the requester's email quotes).
_DECIDED_BY: dict[str, str] = {EscalationStatus.APPROVED: Decision.Kind.APPROVE, EscalationStatus.EXECUTED: Decision.Kind.APPROVE,
               EscalationStatus.REJECTED: Decision.Kind.REJECT}


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


def asker_role(escalation: Escalation, user: User | None) -> str:
    """The role a question's asker is named by to the requester (never their name): the role the case asks now when
    they hold it, else one of theirs; "" for someone who holds none any more."""
    if user is None:
        return ""
    roles = user_roles(user=user, tenant=escalation.tenant)
    if escalation.assigned_role in roles:
        return escalation.assigned_role
    return min(roles) if roles else ""


@dataclass(frozen=True)
class OpenQuestion:
    body: str | None  # None once erased
    asked_at: datetime
    role: str  # the asker's role (asker_role)


def open_questions(escalation: Escalation) -> list[OpenQuestion]:
    """The questions to the requester since their last word, latest versions only (what the status page asks them
    to answer); none on a closed case."""
    if escalation.status not in OPEN_STATUSES:
        return []
    conversation = comments_of(escalation)
    since = max((c.comment.created_at for c in conversation if c.comment.by_requester), default=None)
    return [OpenQuestion(body=c.body, asked_at=c.comment.created_at, role=asker_role(escalation, c.comment.author_user))
            for c in conversation if c.comment.kind == Comment.Kind.QUESTION and c.replaced_by is None
            and (since is None or c.comment.created_at > since)]


@dataclass(frozen=True)
class RequesterStatus:
    escalation: Escalation
    waiting_kind: str  # a WaitingKind value (NOTHING once final)
    role: str  # the role asked now ("" once final)
    approvals_missing: int
    also_named_people: bool  # the current stage also asks people by name (never named here)
    outcome: Decision | None  # the approval or rejection that closed the case (its reason, conditions, role, time)
    closed_at: datetime | None
    questions: list[OpenQuestion]  # open questions to the requester (the page lets them answer)


def requester_status(escalation: Escalation) -> RequesterStatus:
    """Where the case stands, as its requester may read it."""
    if escalation.is_final:
        kind = _DECIDED_BY.get(escalation.status)
        outcome = (Decision.objects.filter(request_id=escalation.approval_id, decision=kind)
                   .order_by("-decided_at", "-id").first() if kind is not None else None)
        return RequesterStatus(escalation=escalation, waiting_kind=WaitingKind.NOTHING, role="", approvals_missing=0,
                               also_named_people=False, outcome=outcome,
                               closed_at=escalation.decided_at or escalation.closed_at, questions=[])
    waiting = escalation_waiting_for(escalation)
    return RequesterStatus(escalation=escalation, waiting_kind=waiting.kind, role=waiting.role or "",
                           approvals_missing=waiting.approvals_missing,
                           also_named_people=bool(stage_names(escalation)), outcome=None, closed_at=None,
                           questions=open_questions(escalation))
