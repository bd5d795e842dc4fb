"""What an open case is still waiting for (issue 3): from whom, and what happens automatically if nothing does.

(Read through escalations.selectors, where the case page's other reads are.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from django.utils import timezone

from accounts.delegations import delegations_active
from accounts.models import Delegation

from .ladder import next_ladder_step
from .models import Escalation, EscalationStatus
from .named import stage_names
from .standins import Approver, role_staffing, stage_people


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
    # Who must act now (standins.who_must_act: away people out, their delegates in), for an open case.
    people: tuple[Approver, ...] = ()
    # The away members' usernames when only away people could act here and none has a delegate (flagged).
    unstaffed: tuple[str, ...] = ()


def _at(moment: datetime) -> str:
    local, today = timezone.localtime(moment), timezone.localdate()
    return local.strftime("%H:%M" if local.date() == today else "%d %b %Y %H:%M")


def _approvals(missing: int, role: str) -> str:
    return f"{missing} more approval{'s' if missing != 1 else ''} from {role}"


def escalation_waiting_for(escalation: Escalation, *, delegations: Sequence[Delegation] | None = None) -> WaitingFor:
    """What the escalation waits for, from whom (who must act now, with delegates standing in for the away), and
    what happens automatically if nothing does. A stage only away people could satisfy is flagged.

    `delegations`: the tenant's delegations in force, when the caller has read them."""
    if escalation.status not in (EscalationStatus.PENDING, EscalationStatus.ACKNOWLEDGED):
        return _waiting_for(escalation)
    if delegations is None:
        delegations = delegations_active(tenant=escalation.tenant)
    waiting = _waiting_for(escalation, delegations)
    found, away = stage_people(escalation, delegations=delegations)
    people = tuple(found)
    sentence = waiting.sentence
    if away:
        sentence = (f"nobody present can decide: every {escalation.assigned_role} ({', '.join(away)}) is away with "
                    f"nobody standing in; {sentence}")
    return replace(waiting, people=people, unstaffed=away, sentence=sentence)


def _waiting_for(escalation: Escalation, delegations: Sequence[Delegation] | None = None) -> WaitingFor:
    role = escalation.assigned_role
    missing = max(0, escalation.approvals_required - escalation.approvals_received)
    if escalation.is_final:
        return WaitingFor(kind=WaitingKind.NOTHING, role=None, approvals_missing=0, deadline=None, next_role=None,
                          sentence=f"nothing: the escalation is {escalation.status}")
    names = ", ".join(stage_names(escalation))  # the people the stage names ask too (issue 22)
    need = _approvals(missing, " or ".join(x for x in (role, names) if x))
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
                            has_active_member=lambda r: role_staffing(tenant=escalation.tenant, role=r,
                                                                      escalation_type=escalation.type,
                                                                      delegations=delegations).staffed)
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
