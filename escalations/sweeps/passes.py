"""The deadline passes: which rows each claims (a queryset of due rows) and what it does to a claimed chunk.

Each act re-checks the state and deadline on the locked row, as a human action does, and records every change
with the chunk (escalations.changes: the row, its outbox event and its audit event, written together).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import DateTimeField, ExpressionWrapper, F, FloatField, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from approvals.models import ApprovalRequest
from approvals.services import approval_close_many, approval_stages_reassign
from audit.actions import AuditAction
from notifications.outbox import catalogue as events
from trustguard.dbfuncs import SecondsInterval

from .. import obligations
from ..changes import ack_window, audit_state, close, refresh_next_deadline, resume_deferred, sync_from_approval
from ..models import Escalation, EscalationStatus, ExpiryOutcome, ExpiryReason
from ..policies import expiry_outcome
from .chunks import Chunk, SweepResult

log = logging.getLogger("escalations.sweeps")

REMINDER_AT = 0.75  # remind the assigned role once 75% of its acknowledgement window has passed


# --- 1. deferral wake-up --------------------------------------------------------------------------------

def _deferred_due(now: datetime) -> QuerySet[Escalation]:
    return Escalation.objects.filter(status=EscalationStatus.DEFERRED, defer_until__lte=now)


def _wake(rows: list[Escalation], chunk: Chunk) -> SweepResult:
    now, result = chunk.now, SweepResult()
    for escalation in rows:
        if escalation.status != EscalationStatus.DEFERRED or not escalation.defer_until or escalation.defer_until > now:
            continue
        before, deferred_until = audit_state(escalation), escalation.defer_until
        resume_deferred(escalation, now)  # the SLA clock stood still while deferred: expires_at moves by the sleep
        chunk.change(escalation, before=before, action=AuditAction.ESCALATION_RESUMED,
                     event=events.ESCALATION_RESUMED,
                     changed=("status", "defer_until", "deferred_at", "expires_at", "ack_due_at", "reminder_sent_at",
                              "top_alerted_at", "next_deadline_at"),
                     details={"deferred_until": deferred_until}, event_extra={"deferred_until": deferred_until})
        result.resumed += 1
    return result


# --- 2. expiry -------------------------------------------------------------------------------------------

_EXPIRABLE = (EscalationStatus.PENDING, EscalationStatus.ACKNOWLEDGED)


def _expiry_due(now: datetime) -> QuerySet[Escalation]:
    return Escalation.objects.filter(status__in=_EXPIRABLE, expires_at__lte=now)


def _expire(rows: list[Escalation], chunk: Chunk) -> SweepResult:
    """Past expires_at without a final decision: expired, or rejected where the policy says so; never approved."""
    now, result = chunk.now, SweepResult()
    due = [e for e in rows if e.status in _EXPIRABLE and e.expires_at <= now]
    outcomes = {e.pk: expiry_outcome(e.policy_snapshot, e.risk_level) for e in due}
    approval_close_many(status_by_request={
        e.approval_id: (ApprovalRequest.Status.REJECTED if outcomes[e.pk] == ExpiryOutcome.REJECT
                        else ApprovalRequest.Status.CANCELLED)  # the engine has no "expired": nobody approved it
        for e in due})
    for escalation in due:
        before, outcome = audit_state(escalation), outcomes[escalation.pk]
        details = {"reason": "expired", "outcome": outcome, "expires_at": escalation.expires_at}
        changed = ("status", "closed_at", "decided_at", "defer_until", "deferred_at", "next_deadline_at",
                   "expiry_reason")
        if outcome == ExpiryOutcome.REJECT:
            close(escalation, EscalationStatus.REJECTED, now)
            chunk.change(escalation, before=before, action=AuditAction.ESCALATION_REJECTED,
                         event=events.ESCALATION_REJECTED,
                         changed=changed, details=details, event_extra={"reason": "expired"})
            result.rejected_on_expiry += 1
        else:
            close(escalation, EscalationStatus.EXPIRED, now)
            escalation.expiry_reason = ExpiryReason.UNDECIDED
            chunk.change(escalation, before=before, action=AuditAction.ESCALATION_EXPIRED,
                         event=events.ESCALATION_EXPIRED, changed=changed,
                         details={**details, "expiry_reason": ExpiryReason.UNDECIDED},
                         event_extra={"reason": "expired", "expiry_reason": ExpiryReason.UNDECIDED})
            result.expired += 1
    return result


# --- 2b. lapsed approvals (escalations.schedule) ---------------------------------------------------------

def _lapse_due(now: datetime) -> QuerySet[Escalation]:
    return Escalation.objects.filter(status=EscalationStatus.APPROVED, approval_expires_at__lte=now)


def _lapse(rows: list[Escalation], chunk: Chunk) -> SweepResult:
    """Approved but not executed by approval_expires_at: expired, expiry_reason approval_lapsed."""
    now, result = chunk.now, SweepResult()
    for escalation in rows:
        lapsed_at = escalation.approval_expires_at
        if escalation.status != EscalationStatus.APPROVED or lapsed_at is None or lapsed_at > now:
            continue
        before = audit_state(escalation)
        close(escalation, EscalationStatus.EXPIRED, now)
        escalation.expiry_reason = ExpiryReason.APPROVAL_LAPSED
        lapse = {"reason": ExpiryReason.APPROVAL_LAPSED.value, "expiry_reason": ExpiryReason.APPROVAL_LAPSED.value,
                 "approval_expires_at": lapsed_at}
        chunk.change(escalation, before=before, action=AuditAction.ESCALATION_APPROVAL_LAPSED,
                     event=events.ESCALATION_EXPIRED, details=lapse, event_extra=lapse,
                     changed=("status", "closed_at", "defer_until", "deferred_at", "next_deadline_at", "expiry_reason"))
        result.approvals_lapsed += 1
    return result


# --- 3. re-escalation and top-of-ladder alerts -------------------------------------------------------------

def _ack_overdue(now: datetime) -> QuerySet[Escalation]:
    # top_alerted_at: an escalation at its top is alerted once per breach, not on every sweep.
    return Escalation.objects.filter(status=EscalationStatus.PENDING, ack_due_at__lte=now, top_alerted_at__isnull=True)


def _escalate(rows: list[Escalation], chunk: Chunk) -> SweepResult:
    """Not acknowledged in time: one step up the ladder, or, at the top, one alert and wait for a person."""
    now, result = chunk.now, SweepResult()
    due = [e for e in rows if e.status == EscalationStatus.PENDING and e.ack_due_at and e.ack_due_at <= now
           and e.top_alerted_at is None]
    steps = {e.pk: chunk.ladder_step(e) for e in due}
    # The engine lets the new role decide at the current stage (approvals already given still count).
    stages = approval_stages_reassign(roles_by_request={
        e.approval_id: step.role for e in due if (step := steps[e.pk]).role is not None})
    for escalation in due:
        step = steps[escalation.pk]
        for role in step.skipped:
            away = chunk.staffing(escalation.tenant, role, escalation.type).away
            # Like an empty role, a level whose every member is away with nobody standing in (issue 19): the
            # skip says who was away.
            skip = ({"role": role, "reason": "every member is away with nobody standing in", "away": list(away)}
                    if away else {"role": role, "reason": "no active member in the tenant"})
            chunk.note(escalation, actor=chunk.actor(escalation), action=AuditAction.ESCALATION_LADDER_LEVEL_SKIPPED,
                       details={**skip, "from_role": escalation.assigned_role})
        result.levels_skipped += len(step.skipped)
        before = audit_state(escalation)
        from_role, from_level, overdue_since = escalation.assigned_role, escalation.escalation_level, escalation.ack_due_at
        if step.role is None:
            escalation.top_alerted_at = now
            chunk.change(escalation, before=before, action=AuditAction.ESCALATION_SLA_BREACHED,
                         event=events.ESCALATION_SLA_BREACHED,
                         changed=("top_alerted_at",),
                         details={"reason": step.top_reason, "ack_due_at": overdue_since},
                         event_extra={"reason": step.top_reason, "overdue_since": overdue_since})
            result.top_alerts += 1
            continue
        stage = stages.get(escalation.approval_id)
        if stage is None:  # the engine has no current stage for it: leave it for a person, do not crash the sweep
            log.error("escalation %s: approval request %s has no current stage; not re-escalated",
                      escalation.pk, escalation.approval_id)
            continue
        escalation.escalation_level = step.level
        sync_from_approval(escalation, None, stage=stage)
        escalation.ack_due_at = now + ack_window(escalation)
        escalation.reminder_sent_at = None  # one reminder per level
        refresh_next_deadline(escalation)
        moved = {"from_role": from_role, "from_level": from_level, "to_role": escalation.assigned_role,
                 "to_level": escalation.escalation_level, "skipped_roles": list(step.skipped),
                 "overdue_since": overdue_since}
        chunk.change(escalation, before=before, action=AuditAction.ESCALATION_ESCALATED,
                     event=events.ESCALATION_ESCALATED,
                     changed=("escalation_level", "assigned_role", "current_stage", "approvals_required",
                              "approvals_received", "ack_due_at", "reminder_sent_at", "next_deadline_at"),
                     details=moved, event_extra=moved)
        result.escalated += 1
    return result


# --- 4. reminders -------------------------------------------------------------------------------------------

def _reminder_due(now: datetime) -> QuerySet[Escalation]:
    sla = Cast(KT("policy_snapshot__ack_sla_seconds"), FloatField())
    lead = SecondsInterval(sla * (1 - REMINDER_AT))
    remind_at = ExpressionWrapper(F("ack_due_at") - lead, output_field=DateTimeField())
    return (Escalation.objects.filter(status=EscalationStatus.PENDING, ack_due_at__gt=now,
                                      reminder_sent_at__isnull=True, top_alerted_at__isnull=True)
            .alias(remind_at=remind_at).filter(remind_at__lte=now))


def _remind(rows: list[Escalation], chunk: Chunk) -> SweepResult:
    now, result = chunk.now, SweepResult()
    for escalation in rows:
        due_at = escalation.ack_due_at
        if (escalation.status != EscalationStatus.PENDING or escalation.reminder_sent_at is not None or due_at is None
                or not due_at - ack_window(escalation) * (1 - REMINDER_AT) <= now < due_at):
            continue
        before = audit_state(escalation)
        escalation.reminder_sent_at = now
        chunk.change(escalation, before=before, action=AuditAction.ESCALATION_REMINDER_SENT,
                     event=events.ESCALATION_REMINDER,
                     changed=("reminder_sent_at",), details={"ack_due_at": due_at},
                     event_extra={"ack_due_at": due_at, "level": escalation.escalation_level})
        result.reminders += 1
    return result


# --- 5. overdue conditions (escalations.obligations) ------------------------------------------------------------

def _conditions_due(now: datetime) -> QuerySet[Escalation]:
    return Escalation.objects.filter(conditions_due_at__lte=now, status__in=obligations.WATCHED)


def _overdue(rows: list[Escalation], chunk: Chunk) -> SweepResult:
    """Open conditions past due: overdue, raised once (they leave conditions_due_at, the pass's claim column)."""
    now, result = chunk.now, SweepResult()
    for escalation in rows:
        if escalation.status not in obligations.WATCHED or escalation.conditions_due_at is None \
                or escalation.conditions_due_at > now:
            continue
        before = audit_state(escalation)
        newly = obligations.mark_overdue(escalation, now)
        overdue = [{"id": c["id"], "text": c["text"], "owner": c["owner"], "due_at": c["due_at"]} for c in newly]
        chunk.change(escalation, before=before, action=AuditAction.CONDITION_OVERDUE,
                     event=events.ESCALATION_CONDITION_OVERDUE, changed=("conditions", "conditions_due_at"),
                     details={"overdue": overdue}, event_extra={"overdue": overdue})
        result.conditions_overdue += 1
    return result


# --- in order ---------------------------------------------------------------------------------------------------

@dataclass
class Pass:
    name: str
    due: Callable[[datetime], QuerySet[Escalation]]
    order: str
    act: Callable[[list[Escalation], Chunk], SweepResult]


PASSES = (
    Pass("deferral", _deferred_due, "defer_until", _wake),
    Pass("expiry", _expiry_due, "expires_at", _expire),
    Pass("approval-lapse", _lapse_due, "approval_expires_at", _lapse),
    Pass("re-escalation", _ack_overdue, "ack_due_at", _escalate),
    Pass("reminder", _reminder_due, "ack_due_at", _remind),
    Pass("conditions", _conditions_due, "conditions_due_at", _overdue),
)
