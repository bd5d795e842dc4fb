"""Reads of escalations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from accounts.selectors import role_has_active_member

from .ladder import next_ladder_step
from .models import Escalation, EscalationStatus

# --- what is still needed (issue 3) ------------------------------------------------------------------


class WaitingKind:
    ACKNOWLEDGEMENT = "acknowledgement"  # pending: the assigned role must take it before ack_due_at
    DECISION = "decision"  # acknowledged, or overdue at the top of the ladder: a person must decide
    DEFERRAL = "deferral"  # deferred: nothing until defer_until, then back to the same role
    NOTHING = "nothing"  # final


@dataclass(frozen=True)
class WaitingFor:
    kind: str  # a WaitingKind value
    role: str | None  # who is being asked now
    approvals_missing: int  # at the current stage
    deadline: datetime | None  # when the next automatic step happens (re-escalation, alert, expiry, wake-up)
    next_role: str | None  # who is asked next if nobody acknowledges by `deadline` (same ladder as the sweep)
    sentence: str


def _at(moment: datetime) -> str:
    local, today = timezone.localtime(moment), timezone.localdate()
    return local.strftime("%H:%M" if local.date() == today else "%d %b %Y %H:%M")


def _approvals(missing: int, role: str) -> str:
    return f"{missing} more approval{'s' if missing != 1 else ''} from {role}"


def escalation_waiting_for(escalation: Escalation) -> WaitingFor:
    """What the escalation waits for, from whom, and what happens automatically if nothing does."""
    role = escalation.assigned_role
    missing = max(0, escalation.approvals_required - escalation.approvals_received)
    if escalation.is_final:
        return WaitingFor(kind=WaitingKind.NOTHING, role=None, approvals_missing=0, deadline=None, next_role=None,
                          sentence=f"nothing: the escalation is {escalation.status}")
    need = _approvals(missing, role)
    if escalation.status == EscalationStatus.DEFERRED:
        until = escalation.defer_until
        return WaitingFor(kind=WaitingKind.DEFERRAL, role=role, approvals_missing=missing, deadline=until,
                          next_role=None,
                          sentence=f"deferred until {_at(until) if until else 'a later date'}; then {need}")
    if escalation.status == EscalationStatus.ACKNOWLEDGED:
        return WaitingFor(kind=WaitingKind.DECISION, role=role, approvals_missing=missing,
                          deadline=escalation.expires_at, next_role=None,
                          sentence=f"{need}; expires at {_at(escalation.expires_at)} if not decided")
    # Pending: the sweep's own ladder logic says what happens at ack_due_at.
    step = next_ladder_step(snapshot=escalation.policy_snapshot, assigned_role=role,
                            level=escalation.escalation_level,
                            has_active_member=lambda r: role_has_active_member(tenant=escalation.tenant, role=r))
    due = escalation.ack_due_at
    if step.role is not None and due is not None:
        return WaitingFor(kind=WaitingKind.ACKNOWLEDGEMENT, role=role, approvals_missing=missing, deadline=due,
                          next_role=step.role,
                          sentence=f"{need}; re-escalates to {step.role} at {_at(due)} if not acknowledged")
    if escalation.top_alerted_at is not None or (due is not None and due <= timezone.now()):
        return WaitingFor(kind=WaitingKind.DECISION, role=role, approvals_missing=missing,
                          deadline=escalation.expires_at, next_role=None,
                          sentence=f"{need}; overdue at the top of the ladder: waits for a manual decision "
                                   f"(expires at {_at(escalation.expires_at)})")
    return WaitingFor(kind=WaitingKind.ACKNOWLEDGEMENT, role=role, approvals_missing=missing, deadline=due,
                      next_role=None,
                      sentence=f"{need}; top of the ladder: an alert goes out at "
                               f"{_at(due) if due else 'the deadline'} if not acknowledged")
