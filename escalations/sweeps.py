"""The deadline sweeps: deferral wake-up, expiry, re-escalation up the ladder, reminders.

Deadlines are columns (ack_due_at, expires_at, defer_until), never Celery ETAs. Beat runs
sweep_deadlines() every TRUSTGUARD_SWEEP_INTERVAL seconds (job "escalations.sweep_deadlines");
`manage.py run_sweeps` runs it once by hand.

Concurrency policy: each pass works in chunks, one transaction per chunk. A chunk claims its
rows with SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL; a no-op on SQLite, whose writers are
serialised anyway), so two sweeps at once (two beats, or beat plus run_sweeps) never claim the
same escalation, and a person deciding right now (who holds the row lock) is simply skipped
until the next sweep. Every transition leaves the pass's WHERE clause (status, deadline,
reminder_sent_at or top_alerted_at change), so a row is acted on once; the state and deadline are
re-checked on the locked row, as a human action does. Rows are written in bulk per chunk, but each
changed escalation still gets its own outbox event and its own audit event, in the same transaction.

Pass order matters: wake-ups first (they move expires_at), then expiry (an expired case is not
re-escalated), then re-escalation, then reminders (a case just re-escalated has a fresh window).
"""

from __future__ import annotations

import gc
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, FloatField, QuerySet, TextField
from django.db.models.base import ModelState
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.actors import Actor
from accounts.delegations import delegations_active
from accounts.models import Delegation, Tenant
from approvals.models import ApprovalRequest
from approvals.services import approval_close_many, approval_stages_reassign
from audit.actions import AuditAction
from notifications.outbox import catalogue as events
from notifications.outbox.catalogue import EventKind
from trustguard.bulk import select_rows
from trustguard.dbfuncs import SecondsInterval

from . import obligations
from .changes import Changes, ack_window, audit_state, close, refresh_next_deadline, resume_deferred, sync_from_approval
from .ladder import LadderStep, next_ladder_step
from .models import Escalation, EscalationStatus, ExpiryOutcome, ExpiryReason
from .policies import expiry_outcome
from .standins import Staffing, role_staffing

log = logging.getLogger(__name__)

CHUNK_SIZE = 2000  # rows per transaction: fewer commits (each waits for the WAL to reach disk), locks held < 1 s
SYSTEM_JOB = "sla_sweep"
REMINDER_AT = 0.75  # remind the assigned role once 75% of its acknowledgement window has passed


@dataclass
class SweepResult:
    resumed: int = 0
    expired: int = 0
    rejected_on_expiry: int = 0
    escalated: int = 0
    levels_skipped: int = 0
    top_alerts: int = 0
    reminders: int = 0
    approvals_lapsed: int = 0
    conditions_overdue: int = 0

    def __add__(self, other: SweepResult) -> SweepResult:
        return SweepResult(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def total(self) -> int:
        return (self.resumed + self.expired + self.rejected_on_expiry + self.escalated + self.top_alerts
                + self.reminders + self.approvals_lapsed + self.conditions_overdue)

    def summary(self) -> str:
        return (f"{self.resumed} resumed from deferral, {self.expired} expired, {self.rejected_on_expiry} rejected "
                f"on expiry, {self.escalated} re-escalated ({self.levels_skipped} empty levels skipped), "
                f"{self.top_alerts} top-of-ladder alerts, {self.reminders} reminders, {self.approvals_lapsed} "
                f"approvals lapsed, {self.conditions_overdue} cases with conditions newly overdue")


# --- per-chunk plumbing ------------------------------------------------------------------------------

class _Chunk(Changes):
    """One chunk's changes (the one recorder, flushed once per chunk), with what its rows share asked once:
    the tenant's system actor, whether a role has an active member, the ladder's next step."""

    def __init__(self, now: datetime) -> None:
        super().__init__(now)
        self._actors: dict[int, Actor] = {}
        self._staffing: dict[tuple[int, str, str], Staffing] = {}
        self._delegations: dict[int, list[Delegation]] = {}
        self._steps: dict[tuple[int, int, str, int, str], LadderStep] = {}

    def actor(self, escalation: Escalation) -> Actor:
        if escalation.tenant_id not in self._actors:
            self._actors[escalation.tenant_id] = Actor.for_system(escalation.tenant, SYSTEM_JOB)
        return self._actors[escalation.tenant_id]

    def staffing(self, tenant: Tenant, role: str, escalation_type: str) -> Staffing:
        """standins.role_staffing (a member present, or standing in for one who is away), asked once per tenant,
        role and type per chunk; the tenant's delegations in force read once."""
        key = (tenant.pk, role, escalation_type)
        if key not in self._staffing:
            if tenant.pk not in self._delegations:
                self._delegations[tenant.pk] = delegations_active(tenant=tenant, at=self.now)
            self._staffing[key] = role_staffing(tenant=tenant, role=role, escalation_type=escalation_type,
                                                at=self.now, delegations=self._delegations[tenant.pk])
        return self._staffing[key]

    def has_active_member(self, tenant: Tenant, escalation_type: str) -> Callable[[str], bool]:
        """Whether a ladder role has anyone present to act (issue 19: everyone away with nobody standing in
        counts as nobody), for next_ladder_step."""
        return lambda role: self.staffing(tenant, role, escalation_type).staffed

    def ladder_step(self, escalation: Escalation) -> LadderStep:
        """ladder_step_for, worked out once per tenant, policy snapshot, role, level and type in a chunk."""
        key = (escalation.tenant_id, id(escalation.policy_snapshot), escalation.assigned_role,
               escalation.escalation_level, escalation.type)
        if key not in self._steps:
            self._steps[key] = ladder_step_for(escalation, self.has_active_member(escalation.tenant, escalation.type))
        return self._steps[key]

    def change(self, escalation: Escalation, *, changed: Iterable[str], before: dict[str, Any], action: AuditAction,
               event: EventKind[Any], details: dict[str, Any] | None = None,
               event_extra: dict[str, Any] | None = None) -> None:
        """Record a sweep's change of `escalation` (its `changed` fields written with the chunk's rows)."""
        self.record(escalation, actor=self.actor(escalation), action=action, before=before, event=event,
                    details=details, event_extra=event_extra, fields=changed)


# The columns a sweep reads (the rest of the row stays deferred: touching it would load it); the JSON ones
# (conditions, the policy snapshot) are read as text and decoded once per distinct value in a chunk.
_CLAIMED = tuple(f.attname for f in Escalation._meta.concrete_fields if f.name in {
    "id", "tenant", "approval", "type", "status", "source_system", "source_entity_type", "source_entity_id",
    "source_url", "amount_minor", "currency", "risk_level", "urgency", "current_stage", "assigned_role",
    "escalation_level", "approvals_required", "approvals_received", "ack_due_at", "expires_at", "defer_until",
    "deferred_at", "next_deadline_at", "reminder_sent_at", "top_alerted_at", "decided_at", "closed_at",
    "approval_expires_at", "expiry_reason", "conditions_due_at", "estimated_cost_minor", "estimated_cost_currency",
    "window_starts_at", "window_ends_at", "requested_by_user"})
_NAMES = (*_CLAIMED, "conditions", "policy_snapshot")
_TENANT = _CLAIMED.index("tenant_id")


def _loaded(values: Iterable[Any], tenant: Tenant) -> Escalation:
    """An Escalation of the claimed columns, as Model.from_db would load it (the other fields deferred).

    Without Model.__init__: it costs ~100 µs a row (a field loop and two signals per instance), several times
    the row's own share of the sweep. The instance is an ordinary one: a deferred field loads on first use.
    """
    escalation = Escalation.__new__(Escalation)
    state = ModelState()
    state.adding, state.db = False, "default"
    state.fields_cache["tenant"] = tenant
    escalation.__dict__.update(zip(_NAMES, values, strict=True))
    escalation._state = state
    return escalation


def _claim(qs: QuerySet[Escalation], order: str, limit: int) -> list[Escalation]:
    """Lock up to `limit` rows nobody else holds, oldest deadline first.

    A chunk usually spans one or a few tenants, fetched once here instead of joined per row; JSON
    (conditions, the policy snapshot) is decoded once per distinct text, as most rows share it.
    """
    rows = select_rows(qs.select_for_update(skip_locked=True).order_by(order, "pk")
                       .annotate(conditions_json=Cast("conditions", TextField()),
                                 snapshot_json=Cast("policy_snapshot", TextField()))
                       .values_list(*_CLAIMED, "conditions_json", "snapshot_json")[:limit])
    tenants = Tenant.objects.in_bulk({row[_TENANT] for row in rows})
    decoded: dict[str, Any] = {}

    def value(text: str) -> Any:
        if text not in decoded:
            decoded[text] = json.loads(text)
        return decoded[text]

    return [_loaded((*row[:-2], value(row[-2]), value(row[-1])), tenants[row[_TENANT]]) for row in rows]


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for one chunk.

    A chunk allocates a few dozen objects per row, freed by reference counting when it ends; meanwhile
    they would trigger the collector over and over, each time walking them and the whole long-lived heap
    (measured: about a tenth of a sweep's CPU). Anything cyclic is collected once the chunk is done.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run_pass(name: str, qs: Callable[[datetime], QuerySet[Escalation]], order: str,
              act: Callable[[list[Escalation], _Chunk], SweepResult], *, now: datetime | None,
              chunk_size: int) -> SweepResult:
    """Claim and act on chunks until none is full: one transaction per chunk."""
    total = SweepResult()
    while True:
        chunk_now = now or timezone.now()
        with _no_cyclic_gc(), transaction.atomic():
            rows = _claim(qs(chunk_now), order, chunk_size)
            chunk = _Chunk(chunk_now)
            result = act(rows, chunk)
            chunk.flush()
        total += result
        if len(rows) < chunk_size or result.total == 0:
            # A short chunk means the queue is drained (or the rest is held by another sweep);
            # a chunk that changed nothing must not be claimed again forever.
            break
    if total.total:
        log.info("sweep %s: %s", name, total.summary())
    return total


# --- 1. deferral wake-up --------------------------------------------------------------------------------

def _deferred_due(now: datetime) -> QuerySet[Escalation]:
    return Escalation.objects.filter(status=EscalationStatus.DEFERRED, defer_until__lte=now)


def _wake(rows: list[Escalation], chunk: _Chunk) -> SweepResult:
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


def _expire(rows: list[Escalation], chunk: _Chunk) -> SweepResult:
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


def _lapse(rows: list[Escalation], chunk: _Chunk) -> SweepResult:
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


def ladder_step_for(escalation: Escalation, has_active_member: Callable[[str], bool]) -> LadderStep:
    return next_ladder_step(snapshot=escalation.policy_snapshot, assigned_role=escalation.assigned_role,
                            level=escalation.escalation_level, has_active_member=has_active_member)


def _escalate(rows: list[Escalation], chunk: _Chunk) -> SweepResult:
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


def _remind(rows: list[Escalation], chunk: _Chunk) -> SweepResult:
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


def _overdue(rows: list[Escalation], chunk: _Chunk) -> SweepResult:
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


# --- the job ------------------------------------------------------------------------------------------------

@dataclass
class _Pass:
    name: str
    due: Callable[[datetime], QuerySet[Escalation]]
    order: str
    act: Callable[[list[Escalation], _Chunk], SweepResult]


PASSES = (
    _Pass("deferral", _deferred_due, "defer_until", _wake),
    _Pass("expiry", _expiry_due, "expires_at", _expire),
    _Pass("approval-lapse", _lapse_due, "approval_expires_at", _lapse),
    _Pass("re-escalation", _ack_overdue, "ack_due_at", _escalate),
    _Pass("reminder", _reminder_due, "ack_due_at", _remind),
    _Pass("conditions", _conditions_due, "conditions_due_at", _overdue),
)


def sweep_deadlines(*, now: datetime | None = None, chunk_size: int = CHUNK_SIZE,
                    only: Iterable[str] = ()) -> SweepResult:
    """Run every deadline pass once, in order; safe to run concurrently with itself."""
    total = SweepResult()
    only = set(only)
    for p in PASSES:
        if only and p.name not in only:
            continue
        total += _run_pass(p.name, p.due, p.order, p.act, now=now, chunk_size=chunk_size)
    return total


def deadlines_apply_one(escalation_id: uuid.UUID, now: datetime) -> SweepResult:
    """The deferral wake-up and expiry passes for one escalation, in the caller's transaction.

    A decision or acknowledgement that arrives after the case's deadline, before beat's sweep got to it,
    moves the case to its outcome through this very code (the sweep's own transitions, events and audit),
    so the outcome never depends on when the sweep last ran. The caller holds the row's lock.
    """
    total = SweepResult()
    for p in PASSES[:3]:  # deferral, expiry, then a lapsed approval: the order of sweep_deadlines
        chunk = _Chunk(now)
        total += p.act(_claim(p.due(now).filter(pk=escalation_id), p.order, 1), chunk)
        chunk.flush()
    return total
