"""The sweeps' chunk plumbing: claim rows, act on them with one recorder, flush, commit; two chunks in flight.

Pipelining: once a claim comes back full, a second worker (a thread with a database connection of its own)
claims and builds the next chunk while the first writes and commits, so Python's work on one chunk overlaps
PostgreSQL's on the other. It is two sweeps at once, which the concurrency policy already allows: SKIP LOCKED
hands the second worker the rows after the first's, and the audit chain head (locked last, until commit) puts
their audit events one chunk after the other, never interleaved. Only on PostgreSQL outside a caller's
transaction: a second connection would not see the caller's uncommitted rows, and SQLite serialises writers.
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from django.db import connections, router, transaction
from django.db.models import QuerySet, TextField
from django.db.models.base import ModelState
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.actors import Actor
from accounts.delegations import delegations_active
from accounts.models import Delegation, Tenant
from audit.actions import AuditAction
from notifications.outbox.catalogue import EventKind
from trustguard.bulk import select_rows

from ..changes import Changes
from ..ladder import LadderStep, next_ladder_step
from ..models import Escalation
from ..standins import Staffing, role_staffing

# Rows per transaction: fewer commits (each waits for the WAL to reach the disk), locks held < 1 s. Not re-tuned
# for two chunks in flight: on the shared machine of issue #25 the noise was larger than any difference to find.
CHUNK_SIZE = 2000
SYSTEM_JOB = "sla_sweep"


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


class Chunk(Changes):
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

    def ladder_step(self, escalation: Escalation) -> LadderStep:
        """The next step up the ladder (a role with anyone present to act: issue 19 counts everyone away with
        nobody standing in as nobody), worked out once per tenant, policy snapshot, role, level and type."""
        key = (escalation.tenant_id, id(escalation.policy_snapshot), escalation.assigned_role,
               escalation.escalation_level, escalation.type)
        if key not in self._steps:
            tenant, kind = escalation.tenant, escalation.type
            self._steps[key] = next_ladder_step(
                snapshot=escalation.policy_snapshot, assigned_role=escalation.assigned_role,
                level=escalation.escalation_level, has_active_member=lambda role: self.staffing(tenant, role, kind).staffed)
        return self._steps[key]

    def change(self, escalation: Escalation, *, changed: Iterable[str], before: dict[str, Any], action: AuditAction,
               event: EventKind[Any], details: dict[str, Any] | None = None,
               event_extra: dict[str, Any] | None = None) -> None:
        """Record a sweep's change of `escalation` (its `changed` fields written with the chunk's rows)."""
        self.record(escalation, actor=self.actor(escalation), action=action, before=before, event=event,
                    details=details, event_extra=event_extra, fields=changed)


# The columns a sweep reads (the rest of the row stays deferred: touching it would load it, one query per row;
# tests/escalations/test_sweep_queries.py notices). The JSON ones (conditions, the policy snapshot) are read as
# text and decoded once per distinct value in a chunk.
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


def claim(qs: QuerySet[Escalation], order: str, limit: int) -> list[Escalation]:
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


class _CyclicGcPaused:
    """The cyclic garbage collector paused while any chunk is being built (by either worker).

    A chunk allocates a few dozen objects per row, freed by reference counting when it ends; meanwhile
    they would trigger the collector over and over, each time walking them and the whole long-lived heap
    (measured: about a tenth of a sweep's CPU). Anything cyclic is collected once no chunk is in flight.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth, self._was_enabled = 0, False

    def __enter__(self) -> None:
        with self._lock:
            if not self._depth:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._depth += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._depth -= 1
            if not self._depth and self._was_enabled:
                gc.enable()


_NO_CYCLIC_GC = _CyclicGcPaused()


def run_pass(due: Callable[[datetime], QuerySet[Escalation]], order: str,
             act: Callable[[list[Escalation], Chunk], SweepResult], *, now: datetime | None, chunk_size: int,
             pipeline: bool = True) -> SweepResult:
    """Claim and act on chunks until none is full: one transaction per chunk, two in flight (see above)."""
    connection = connections[router.db_for_write(Escalation)]
    overlap = pipeline and connection.vendor == "postgresql" and not connection.in_atomic_block
    totals: list[SweepResult] = []
    errors: list[BaseException] = []
    helper: list[threading.Thread] = []

    def work(first: bool) -> None:
        total = SweepResult()
        while True:
            chunk_now = now or timezone.now()
            with _NO_CYCLIC_GC, transaction.atomic(using=connection.alias):
                rows = claim(due(chunk_now), order, chunk_size)
                if first and overlap and len(rows) == chunk_size and not helper:
                    # More than a chunk is due: the helper claims the next one while this one is built.
                    helper.append(threading.Thread(target=helped, name="sweep-pipeline", daemon=True))
                    helper[0].start()
                chunk = Chunk(chunk_now)
                result = act(rows, chunk)
                chunk.flush()
            total += result
            if len(rows) < chunk_size or result.total == 0:
                # A short chunk means the queue is drained (or the rest is held by another worker or sweep);
                # a chunk that changed nothing must not be claimed again forever.
                break
        totals.append(total)  # list.append is atomic: no lock needed between the two workers

    def helped() -> None:
        try:
            work(first=False)
        except BaseException as exc:  # re-raised by the caller's thread, after both are done
            errors.append(exc)
        finally:
            connections[connection.alias].close()  # this thread's own connection

    try:
        work(first=True)
    finally:
        for thread in helper:
            thread.join()
    if errors:
        raise errors[0]
    return sum(totals, SweepResult())
