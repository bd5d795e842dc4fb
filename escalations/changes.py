"""How a case changes state, and the one recorder of each change: the lifecycle services' and the sweeps'.

A change is the escalation's new state (set in memory by the helpers here), its outbox event and its audit
event, all written in the caller's transaction. A service records one change (record_change, after it saved the
row); a sweep's chunk records thousands into one Changes and flushes it once (the rows in one UPDATE, the events
and the audit rows with COPY). Either way the event's data and the audit's before/after come from the same
functions (event_data, audit_state), so a transition reads the same whoever made it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from approvals.models import ApprovalRequest, ApprovalStage
from approvals.services import StageState, current_stage
from audit.actions import AuditAction
from audit.services import AuditEntry, audit_record_many
from notifications.outbox.catalogue import Event, EventKind
from notifications.outbox.emit import event_emit
from trustguard.bulk import update_rows
from trustguard.live import live_publish

from .models import Escalation, EscalationStatus
from .named import named_now, stage_names
from .schedule import approval_expiry, window_dict

_JSON_FIELDS = frozenset({"conditions"})

# --- the state of a case ---------------------------------------------------------------------------


def refresh_next_deadline(escalation: Escalation) -> None:
    """The queue's sort key: the deadline that matters in the current status."""
    if escalation.status == EscalationStatus.PENDING:
        candidates = [d for d in (escalation.ack_due_at, escalation.expires_at) if d]
        escalation.next_deadline_at = min(candidates) if candidates else None
    elif escalation.status == EscalationStatus.ACKNOWLEDGED:
        escalation.next_deadline_at = escalation.expires_at
    elif escalation.status == EscalationStatus.DEFERRED:
        escalation.next_deadline_at = escalation.defer_until
    else:
        escalation.next_deadline_at = None


def sync_from_approval(escalation: Escalation, request: ApprovalRequest | None,
                       stage: ApprovalStage | StageState | None = None) -> None:
    """Copy the engine's current stage (of `request`, unless a sweep passes the stage) into the escalation."""
    if stage is None:
        assert request is not None
        stage = current_stage(request)
    escalation.current_stage = stage.index
    escalation.assigned_role = stage.assigned_role
    escalation.approvals_required = stage.approvals_required
    escalation.approvals_received = stage.approvals_received


def ack_window(escalation: Escalation) -> timedelta:
    """How long the assigned role has to acknowledge (the policy snapshot's ack_sla_seconds)."""
    return timedelta(seconds=escalation.policy_snapshot["ack_sla_seconds"])


def open_for_acknowledgement(escalation: Escalation, now: datetime) -> None:
    """A (new) role is being asked: pending, level 0 of its ladder, a fresh acknowledgement deadline."""
    escalation.status = EscalationStatus.PENDING
    escalation.escalation_level = 0
    escalation.acknowledged_by, escalation.acknowledged_at = None, None
    escalation.ack_due_at = now + ack_window(escalation)
    escalation.reminder_sent_at = escalation.top_alerted_at = None


def end_deferral(escalation: Escalation, now: datetime) -> None:
    """The deferral ends now. Deferred time does not count where its clock stopped: the expiry moves by the sleep."""
    if escalation.deferred_at is not None:
        escalation.expires_at += now - escalation.deferred_at
    escalation.defer_until = escalation.deferred_at = None


def resume_deferred(escalation: Escalation, now: datetime) -> None:
    """A deferred case is back: pending at the same stage and level, with a fresh acknowledgement window.

    The one wake-up, whether its defer_until passed (the sweep) or a decision came meanwhile (a partial approval).
    """
    end_deferral(escalation, now)
    escalation.status = EscalationStatus.PENDING
    escalation.ack_due_at = now + ack_window(escalation)
    escalation.reminder_sent_at = escalation.top_alerted_at = None  # a fresh window gets its own reminder
    refresh_next_deadline(escalation)


def close(escalation: Escalation, status: str, now: datetime) -> None:
    escalation.status = status
    escalation.closed_at = now
    if status in (EscalationStatus.APPROVED, EscalationStatus.REJECTED):
        escalation.decided_at = now
    if status == EscalationStatus.APPROVED:  # valid until the policy's TTL or the window's end (schedule.py)
        escalation.approval_expires_at = approval_expiry(escalation, now)
    escalation.defer_until = escalation.deferred_at = None
    refresh_next_deadline(escalation)


# --- what is recorded of it ------------------------------------------------------------------------


def audit_state(escalation: Escalation) -> dict[str, Any]:
    """The audit event's before/after of a change."""
    return {
        "status": escalation.status, "assigned_role": escalation.assigned_role,
        "escalation_level": escalation.escalation_level, "current_stage": escalation.current_stage,
        "approvals_required": escalation.approvals_required, "approvals_received": escalation.approvals_received,
        "ack_due_at": escalation.ack_due_at, "expires_at": escalation.expires_at, "defer_until": escalation.defer_until,
    }


def event_data(escalation: Escalation, **extra: Any) -> dict[str, Any]:
    """The public data of an escalation event (no payload, no contact details)."""
    data: dict[str, Any] = {
        "id": str(escalation.pk), "type": escalation.type, "status": escalation.status,
        "source": {"system": escalation.source_system, "entity_type": escalation.source_entity_type,
                   "entity_id": escalation.source_entity_id, "url": escalation.source_url or None},
        "amount": ({"value_minor": escalation.amount_minor, "currency": escalation.currency}
                   if escalation.amount_minor is not None else None),
        "risk_level": escalation.risk_level, "urgency": escalation.urgency,
        "assigned_role": escalation.assigned_role, "escalation_level": escalation.escalation_level,
        "current_stage": escalation.current_stage, "approvals_required": escalation.approvals_required,
        "approvals_received": escalation.approvals_received, "conditions": escalation.conditions,
        "ack_due_at": escalation.ack_due_at, "expires_at": escalation.expires_at,
        "defer_until": escalation.defer_until, "decided_at": escalation.decided_at,
        "estimated_cost": ({"value_minor": escalation.estimated_cost_minor,
                            "currency": escalation.estimated_cost_currency}
                           if escalation.estimated_cost_minor is not None else None),
        "execution_window": window_dict(escalation), "approval_expires_at": escalation.approval_expires_at,
    }
    data.update(extra)
    return data


def _live_topics(escalation: Escalation, before: dict[str, Any] | None) -> set[tuple[int, str]]:
    """The open queues a change shows in (trustguard/live.py): its role's before and after, its requester's, and
    the tenant-wide view."""
    roles = {escalation.assigned_role, (before or {}).get("assigned_role")}
    topics = {"all", *(f"role:{role}" for role in roles if role)}
    if escalation.requested_by_user_id is not None:
        topics.add(f"user:{escalation.requested_by_user_id}")
    # The people its stage names (issue 22) listen on their own topic; a row read without its snapshot (never
    # the services' locked rows) is not loaded for it: the live queue is a courtesy, the queue itself is exact.
    if "policy_snapshot" not in escalation.get_deferred_fields() and stage_names(escalation):
        topics.update(f"user:{user.pk}" for user in named_now(escalation))
    return {(escalation.tenant_id, topic) for topic in topics}


class Changes:
    """The state-change recorder: changes of escalations, with their outbox and audit events, written together.

    record() queues one change; flush() writes what was queued, in the caller's transaction: the rows the
    caller did not save itself (one UPDATE of the fields named), then the outbox events, then the audit events
    last (they hold the tenants' chain locks until commit).
    """

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or timezone.now()
        self.rows: list[Escalation] = []
        self.fields: set[str] = {"updated_at"}
        self.events: list[Event] = []
        self.audits: list[AuditEntry] = []
        self.live: set[tuple[int, str]] = set()  # (tenant id, topic) of open queues to tell after commit

    def record(self, escalation: Escalation, *, actor: Actor, action: AuditAction, before: dict[str, Any] | None,
               event: EventKind[Any] | None = None, details: dict[str, Any] | None = None,
               event_extra: dict[str, Any] | None = None, fields: Iterable[str] = ()) -> None:
        """One change: its event (if any) and its audit event; with `fields`, its row too (those fields)."""
        fields = tuple(fields)
        if fields:
            escalation.updated_at = self.now  # a bulk UPDATE applies no auto_now
            self.rows.append(escalation)
            self.fields.update(fields)
        if event is not None:
            self.events.append(event(tenant_id=escalation.tenant_id, aggregate_id=escalation.pk,
                                     data=event_data(escalation, **(event_extra or {}))))
        self.audits.append(AuditEntry(escalation.tenant_id, action, actor, "escalation", escalation.pk, before,
                                      audit_state(escalation), details))
        self.live.update(_live_topics(escalation, before))

    def note(self, escalation: Escalation, *, actor: Actor, action: AuditAction, details: dict[str, Any]) -> None:
        """An audit event about the case that changes nothing in it (e.g. a ladder level skipped)."""
        self.audits.append(AuditEntry(escalation.tenant_id, action, actor, "escalation", escalation.pk, None, None,
                                      details))

    def flush(self) -> None:
        if self.rows:
            fields = sorted(self.fields)
            values = attrgetter(*fields)
            # update_rows takes JSON as text (trustguard.bulk): a sweep that changes a JSON column (conditions)
            # hands it over serialised.
            json_at = [i for i, name in enumerate(fields) if name in _JSON_FIELDS]
            rows = [(row.pk, *values(row)) for row in self.rows]  # fields has updated_at and more: a tuple
            if json_at:
                rows = [(r[0], *(json.dumps(v, cls=DjangoJSONEncoder) if i in json_at else v
                                  for i, v in enumerate(r[1:]))) for r in rows]
            update_rows(Escalation, fields, rows)
        event_emit(self.events)
        audit_record_many(self.audits)
        if self.live:
            by_tenant: dict[int, set[str]] = {}
            for tenant_id, topic in self.live:
                by_tenant.setdefault(tenant_id, set()).add(topic)
            # After commit: a page told before then would fetch the queue as it was.
            transaction.on_commit(lambda: live_publish(by_tenant.items()))
        self.rows, self.fields, self.events, self.audits, self.live = [], {"updated_at"}, [], [], set()


def record_change(escalation: Escalation, *, actor: Actor, action: AuditAction, before: dict[str, Any] | None,
                  event: EventKind[Any] | None = None, details: dict[str, Any] | None = None,
                  event_extra: dict[str, Any] | None = None) -> None:
    """Record one change the caller has saved: its outbox event (if any) and its audit event, in its transaction."""
    changes = Changes()
    changes.record(escalation, actor=actor, action=action, before=before, event=event, details=details,
                   event_extra=event_extra)
    changes.flush()
