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
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from django.db import transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, FloatField, Func, QuerySet, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Tenant
from accounts.selectors import role_has_active_member
from approvals.models import ApprovalRequest
from approvals.services import approval_close_many, approval_stages_reassign
from audit.actions import AuditAction
from audit.services import AuditEntry, audit_record_many
from notifications.outbox import catalogue as events
from notifications.outbox.catalogue import Event, EventKind
from notifications.outbox.emit import event_emit
from trustguard.bulk import select_rows, update_rows

from .ladder import LadderStep, next_ladder_step
from .models import Escalation, EscalationStatus, ExpiryOutcome
from .policies import expiry_outcome
from .services import (
    audit_state,
    close,
    event_data,
    refresh_next_deadline,
    resume_from_deferral,
    sync_from_approval,
)
from .sweep_rows import SWEPT_COLUMNS, SweptEscalation

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

    def __add__(self, other: SweepResult) -> SweepResult:
        return SweepResult(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def total(self) -> int:
        return self.resumed + self.expired + self.rejected_on_expiry + self.escalated + self.top_alerts + self.reminders

    def summary(self) -> str:
        return (f"{self.resumed} resumed from deferral, {self.expired} expired, {self.rejected_on_expiry} rejected "
                f"on expiry, {self.escalated} re-escalated ({self.levels_skipped} empty levels skipped), "
                f"{self.top_alerts} top-of-ladder alerts, {self.reminders} reminders")


# --- per-chunk plumbing ------------------------------------------------------------------------------

class _Chunk:
    """The writes of one chunk: changed rows, their outbox events and audit events, flushed in bulk.

    change() mirrors services.record_change (same event data, same audit before/after), but queues
    the rows so one chunk costs a handful of queries instead of several per escalation.
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.rows: list[SweptEscalation] = []
        self.fields: set[str] = {"updated_at"}
        self.events: list[Event] = []
        self.audits: list[AuditEntry] = []
        self._actors: dict[int, Actor] = {}
        self._members: dict[tuple[int, str], bool] = {}
        self._steps: dict[tuple[int, int, str, int], LadderStep] = {}

    def actor(self, tenant: Tenant) -> Actor:
        if tenant.pk not in self._actors:
            self._actors[tenant.pk] = Actor.for_system(tenant, SYSTEM_JOB)
        return self._actors[tenant.pk]

    def has_active_member(self, tenant: Tenant) -> Callable[[str], bool]:
        """role_has_active_member, asked once per tenant and role per chunk."""

        def ask(role: str) -> bool:
            key = (tenant.pk, role)
            if key not in self._members:
                self._members[key] = role_has_active_member(tenant=tenant, role=role)
            return self._members[key]

        return ask

    def ladder_step(self, escalation: SweptEscalation) -> LadderStep:
        """ladder_step_for, worked out once per tenant, policy snapshot, role and level in a chunk."""
        key = (escalation.tenant_id, id(escalation.policy_snapshot), escalation.assigned_role,
               escalation.escalation_level)
        if key not in self._steps:
            self._steps[key] = ladder_step_for(escalation, self.has_active_member(escalation.tenant))
        return self._steps[key]

    def audit_only(self, escalation: SweptEscalation, *, action: AuditAction, details: dict[str, Any]) -> None:
        self.audits.append(AuditEntry(escalation.tenant_id, action, self.actor(escalation.tenant), "escalation",
                                      escalation.pk, None, None, details))

    def change(self, escalation: SweptEscalation, *, changed: Iterable[str], before: dict[str, Any],
               action: AuditAction, event: EventKind[Any], details: dict[str, Any] | None = None,
               event_extra: dict[str, Any] | None = None) -> None:
        escalation.updated_at = self.now  # a bulk UPDATE applies no auto_now
        self.rows.append(escalation)
        self.fields.update(changed)
        self.events.append(event(tenant_id=escalation.tenant_id, aggregate_id=escalation.pk,
                                 data=event_data(escalation, **(event_extra or {}))))
        self.audits.append(AuditEntry(escalation.tenant_id, action, self.actor(escalation.tenant), "escalation",
                                      escalation.pk, before, audit_state(escalation), details))

    def flush(self) -> None:
        """Rows, then outbox, then audit last (it holds the tenants' chain locks until commit)."""
        if self.rows:
            fields = sorted(self.fields)
            values = attrgetter(*fields)
            update_rows(Escalation, fields, [(row.id, *values(row)) for row in self.rows])
        event_emit(self.events)
        audit_record_many(self.audits)


def _claim(qs: QuerySet[Escalation], order: str, limit: int) -> list[SweptEscalation]:
    """Lock up to `limit` rows nobody else holds, oldest deadline first, read as tuples.

    A chunk usually spans one or a few tenants, fetched once here instead of joined per row; JSON
    (conditions, the policy snapshot) is decoded once per distinct text, as most rows share it.
    """
    rows = select_rows(qs.select_for_update(skip_locked=True).order_by(order, "pk")
                       .annotate(conditions_json=Cast("conditions", TextField()),
                                 snapshot_json=Cast("policy_snapshot", TextField()))
                       .values_list(*SWEPT_COLUMNS, "conditions_json", "snapshot_json")[:limit])
    tenants = Tenant.objects.in_bulk({row[1] for row in rows})
    decoded: dict[str, Any] = {}

    def value(text: str) -> Any:
        if text not in decoded:
            decoded[text] = json.loads(text)
        return decoded[text]

    # row[:-2] is exactly SWEPT_COLUMNS; mypy cannot count a starred argument
    return [SweptEscalation(*row[:-2], value(row[-2]), value(row[-1]), tenants[row[1]])  # type: ignore[call-arg]
            for row in rows]


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
              act: Callable[[list[SweptEscalation], _Chunk], SweepResult], *, now: datetime | None,
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


def _ack_sla(escalation: SweptEscalation) -> timedelta:
    return timedelta(seconds=escalation.policy_snapshot["ack_sla_seconds"])


# --- 1. deferral wake-up --------------------------------------------------------------------------------

def _deferred_due(now: datetime) -> QuerySet[Escalation]:
    return Escalation.objects.filter(status=EscalationStatus.DEFERRED, defer_until__lte=now)


def _wake(rows: list[SweptEscalation], chunk: _Chunk) -> SweepResult:
    now, result = chunk.now, SweepResult()
    for escalation in rows:
        if escalation.status != EscalationStatus.DEFERRED or not escalation.defer_until or escalation.defer_until > now:
            continue
        before, deferred_until = audit_state(escalation), escalation.defer_until
        # The SLA clock stood still while deferred: expires_at moves by the time slept.
        resume_from_deferral(escalation, now)
        escalation.status = EscalationStatus.PENDING
        escalation.ack_due_at = now + _ack_sla(escalation)
        escalation.reminder_sent_at = escalation.top_alerted_at = None
        refresh_next_deadline(escalation)
        chunk.change(escalation, before=before, action=AuditAction.ESCALATION_RESUMED, event=events.ESCALATION_RESUMED,
                     changed=("status", "defer_until", "deferred_at", "expires_at", "ack_due_at", "reminder_sent_at",
                              "top_alerted_at", "next_deadline_at"),
                     details={"deferred_until": deferred_until}, event_extra={"deferred_until": deferred_until})
        result.resumed += 1
    return result


# --- 2. expiry -------------------------------------------------------------------------------------------

_EXPIRABLE = (EscalationStatus.PENDING, EscalationStatus.ACKNOWLEDGED)


def _expiry_due(now: datetime) -> QuerySet[Escalation]:
    return Escalation.objects.filter(status__in=_EXPIRABLE, expires_at__lte=now)


def _expire(rows: list[SweptEscalation], chunk: _Chunk) -> SweepResult:
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
        changed = ("status", "closed_at", "decided_at", "defer_until", "deferred_at", "next_deadline_at")
        if outcome == ExpiryOutcome.REJECT:
            close(escalation, EscalationStatus.REJECTED, now)
            chunk.change(escalation, before=before, action=AuditAction.ESCALATION_REJECTED, event=events.ESCALATION_REJECTED,
                         changed=changed, details=details, event_extra={"reason": "expired"})
            result.rejected_on_expiry += 1
        else:
            close(escalation, EscalationStatus.EXPIRED, now)
            chunk.change(escalation, before=before, action=AuditAction.ESCALATION_EXPIRED, event=events.ESCALATION_EXPIRED,
                         changed=changed, details=details, event_extra={"reason": "expired"})
            result.expired += 1
    return result


# --- 3. re-escalation and top-of-ladder alerts -------------------------------------------------------------

def _ack_overdue(now: datetime) -> QuerySet[Escalation]:
    # top_alerted_at: an escalation at its top is alerted once per breach, not on every sweep.
    return Escalation.objects.filter(status=EscalationStatus.PENDING, ack_due_at__lte=now, top_alerted_at__isnull=True)


def ladder_step_for(escalation: Escalation | SweptEscalation, has_active_member: Callable[[str], bool]) -> LadderStep:
    return next_ladder_step(snapshot=escalation.policy_snapshot, assigned_role=escalation.assigned_role,
                            level=escalation.escalation_level, has_active_member=has_active_member)


def _escalate(rows: list[SweptEscalation], chunk: _Chunk) -> SweepResult:
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
            chunk.audit_only(escalation, action=AuditAction.ESCALATION_LADDER_LEVEL_SKIPPED,
                             details={"role": role, "reason": "no active member in the tenant",
                                      "from_role": escalation.assigned_role})
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
        escalation.ack_due_at = now + _ack_sla(escalation)
        escalation.reminder_sent_at = None  # one reminder per level
        refresh_next_deadline(escalation)
        moved = {"from_role": from_role, "from_level": from_level, "to_role": escalation.assigned_role,
                 "to_level": escalation.escalation_level, "skipped_roles": list(step.skipped),
                 "overdue_since": overdue_since}
        chunk.change(escalation, before=before, action=AuditAction.ESCALATION_ESCALATED, event=events.ESCALATION_ESCALATED,
                     changed=("escalation_level", "assigned_role", "current_stage", "approvals_required",
                              "approvals_received", "ack_due_at", "reminder_sent_at", "next_deadline_at"),
                     details=moved, event_extra=moved)
        result.escalated += 1
    return result


# --- 4. reminders -------------------------------------------------------------------------------------------

class _Seconds(Func):
    """A number of seconds as a duration: an interval on PostgreSQL, microseconds on SQLite."""

    output_field = DurationField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="make_interval(secs => %(expressions)s)", **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="CAST((%(expressions)s) * 1000000 AS INTEGER)", **extra)


def _reminder_due(now: datetime) -> QuerySet[Escalation]:
    sla = Cast(KT("policy_snapshot__ack_sla_seconds"), FloatField())
    lead = _Seconds(sla * (1 - REMINDER_AT))
    remind_at = ExpressionWrapper(F("ack_due_at") - lead, output_field=DateTimeField())
    return (Escalation.objects.filter(status=EscalationStatus.PENDING, ack_due_at__gt=now,
                                      reminder_sent_at__isnull=True, top_alerted_at__isnull=True)
            .alias(remind_at=remind_at).filter(remind_at__lte=now))


def _remind(rows: list[SweptEscalation], chunk: _Chunk) -> SweepResult:
    now, result = chunk.now, SweepResult()
    for escalation in rows:
        due_at = escalation.ack_due_at
        if (escalation.status != EscalationStatus.PENDING or escalation.reminder_sent_at is not None or due_at is None
                or not due_at - _ack_sla(escalation) * (1 - REMINDER_AT) <= now < due_at):
            continue
        before = audit_state(escalation)
        escalation.reminder_sent_at = now
        chunk.change(escalation, before=before, action=AuditAction.ESCALATION_REMINDER_SENT, event=events.ESCALATION_REMINDER,
                     changed=("reminder_sent_at",), details={"ack_due_at": due_at},
                     event_extra={"ack_due_at": due_at, "level": escalation.escalation_level})
        result.reminders += 1
    return result


# --- the job ------------------------------------------------------------------------------------------------

@dataclass
class _Pass:
    name: str
    due: Callable[[datetime], QuerySet[Escalation]]
    order: str
    act: Callable[[list[SweptEscalation], _Chunk], SweepResult]


PASSES = (
    _Pass("deferral", _deferred_due, "defer_until", _wake),
    _Pass("expiry", _expiry_due, "expires_at", _expire),
    _Pass("re-escalation", _ack_overdue, "ack_due_at", _escalate),
    _Pass("reminder", _reminder_due, "ack_due_at", _remind),
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
    for p in PASSES[:2]:  # deferral, then expiry: the order of sweep_deadlines
        chunk = _Chunk(now)
        total += p.act(_claim(p.due(now).filter(pk=escalation_id), p.order, 1), chunk)
        chunk.flush()
    return total
