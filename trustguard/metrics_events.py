"""Metrics from the audit trail: every counted event already writes an audit row, so one receiver
of audit.signals.audit_events_recorded (sent by the audit writer, whose inserts send no post_save)
maps actions to counters, and no service needs to import metrics.

Counting happens on commit: a rolled-back change was never an event. (A refused OTP commits its
audit row on purpose, so failures are counted too.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.db import transaction
from django.db.models.signals import post_save

from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import RecordedEvent
from audit.signals import audit_events_recorded

from . import health_checks, metrics
from .ids import uuid7_time

# What the audit writer sends (AuditEvent's fields, without the row id).
Event = RecordedEvent

ACTION_ESCALATED = AuditAction.ESCALATION_ESCALATED
ACTION_SLA_BREACHED = AuditAction.ESCALATION_SLA_BREACHED
FINAL_FROM_DECISION = {"approved", "rejected"}
CLOSING_ACTIONS: dict[str, str] = {AuditAction.ESCALATION_CANCELLED: "cancelled", AuditAction.ESCALATION_EXPIRED: "expired",
                   AuditAction.ESCALATION_EXECUTED: "executed"}
OTP_FAILURE_ACTIONS: dict[str, str] = {AuditAction.OTP_FAILED: "wrong_code", AuditAction.OTP_REPLAY_REFUSED: "replay",
                       AuditAction.OTP_LOCKED_OUT: "locked_out"}


def _state(event: Event, key: str) -> Any:
    """The state before the change (what missed a deadline), else after."""
    for side in (event.before, event.after):
        if isinstance(side, dict) and side.get(key) is not None:
            return side[key]
    return None


def _observe_decision_time(event: Event) -> None:
    # Through the app registry: the project wires the apps, it imports only the leaf (audit) it listens to.
    escalation = apps.get_model("escalations", "Escalation")
    # A version 7 id says when the escalation was made (to the millisecond, plenty for this histogram);
    # only an older, random id needs its row read.
    created = uuid7_time(event.target_id) or (
        escalation._default_manager.filter(pk=event.target_id).values_list("created_at", flat=True).first())
    if created is not None:
        metrics.TIME_TO_DECISION.observe(max(0.0, (event.created_at - created).total_seconds()))


def count_audit_event(event: Event) -> None:
    """Map one committed audit event to the counters it stands for."""
    action, details = event.action, event.details or {}
    if action == AuditAction.ESCALATION_CREATED:
        metrics.ESCALATIONS_CREATED.labels(type=str(details.get("type", ""))).inc()
    elif action == AuditAction.DECISION_RECORDED:
        decision = details.get("decision") or {}
        metrics.DECISIONS.labels(decision=str(decision.get("decision", "")), role=str(decision.get("role", ""))).inc()
        status = (event.after or {}).get("status")
        if status in FINAL_FROM_DECISION:
            metrics.ESCALATIONS_CLOSED.labels(outcome=status).inc()
            _observe_decision_time(event)
    elif action == AuditAction.ESCALATION_APPROVED and details.get("auto_approved"):
        metrics.ESCALATIONS_CLOSED.labels(outcome="auto_approved").inc()
    elif action in CLOSING_ACTIONS:
        metrics.ESCALATIONS_CLOSED.labels(outcome=CLOSING_ACTIONS[action]).inc()
    elif action == AuditAction.ESCALATION_REJECTED and details.get("reason") == "expired":
        metrics.ESCALATIONS_CLOSED.labels(outcome="rejected_on_expiry").inc()
    elif action in (ACTION_ESCALATED, ACTION_SLA_BREACHED):
        _count_breaches(action, *_breach_labels(event))
    elif action in OTP_FAILURE_ACTIONS:
        metrics.OTP_FAILURES.labels(reason=OTP_FAILURE_ACTIONS[action]).inc()


def _breach_labels(event: Event) -> tuple[str, str]:
    """Every missed acknowledgement deadline is a breach: it moves the case up the ladder ("escalated")
    or, at the top, raises an alert ("sla_breached"). Labels: who missed it (role, level)."""
    return str(_state(event, "assigned_role") or ""), str(_state(event, "escalation_level") or 0)


def _count_breaches(action: str, role: str, level: str, n: int = 1) -> None:
    metrics.SLA_BREACHES.labels(role=role, level=level).inc(n)
    if action == ACTION_ESCALATED:
        metrics.REESCALATIONS.labels(role=role, level=level).inc(n)


def count_audit_events(events: Sequence[Event]) -> None:
    """count_audit_event for each; a sweep's thousands of breaches are added up per label first."""
    breaches: Counter[tuple[str, str, str]] = Counter()
    for event in events:
        if event.action in (ACTION_ESCALATED, ACTION_SLA_BREACHED):
            breaches[(event.action, *_breach_labels(event))] += 1
        else:
            count_audit_event(event)
    for (action, role, level), n in breaches.items():
        _count_breaches(action, role, level, n)


def _on_audit_events(sender: type[AuditEvent], events: Sequence[Event], **kwargs: Any) -> None:
    transaction.on_commit(lambda: count_audit_events(events))


def _on_delivery_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """A failed attempt is saved with its error: pending again (a retry follows) or dead (given up)."""
    update_fields = kwargs.get("update_fields")
    if created or (update_fields is not None and not {"status", "last_error"} & set(update_fields)):
        return  # a claim or a reschedule (saved with update_fields), not the outcome of an attempt
    if instance.status == "dead":
        outcome = "dead_lettered"
    elif instance.status == "pending" and instance.last_error:
        outcome = "retry"
    else:
        return
    kind = str(instance.kind)
    transaction.on_commit(lambda: metrics.DELIVERY_FAILURES.labels(kind=kind, outcome=outcome).inc())


def connect() -> None:
    audit_events_recorded.connect(_on_audit_events, sender=AuditEvent, dispatch_uid="trustguard.metrics.audit_events")
    # Delivery attempts are not audited (they are the outbox's plumbing); their row is saved per attempt.
    try:
        delivery = apps.get_model("notifications", "Delivery")
    except LookupError:
        delivery = None
    if delivery is not None and {"status", "last_error", "kind"} <= {f.name for f in delivery._meta.get_fields()}:
        post_save.connect(_on_delivery_saved, sender=delivery, dispatch_uid="trustguard.metrics.delivery_saved")
    metrics.register_gauge("trustguard_outbox", "Outbox events not yet relayed (backlog) and the oldest one's age.",
                           lambda: _figures(health_checks.outbox_figures(), {"backlog": "backlog",
                                                                             "oldest_age_seconds": "lag_seconds"}))
    metrics.register_gauge("trustguard_deliveries", "Deliveries waiting, the oldest one's age, and dead letters.",
                           lambda: _figures(health_checks.delivery_figures(), {
                               "pending": "pending", "oldest_pending_age_seconds": "oldest_pending_age_seconds",
                               "dead_letters": "dead_letters", "retrying": "retrying"}))
    metrics.register_gauge("trustguard_audit_sealing", "Audit events not sealed onto their chain yet, and the oldest "
                           "one's age (the sealing lag).",
                           lambda: _figures(health_checks.audit_sealing_figures(), {
                               "unsealed": "unsealed", "oldest_age_seconds": "lag_seconds"}))


def _figures(figures: dict[str, Any], names: dict[str, str]) -> dict[str, float]:
    if not figures.get("installed"):
        return {}
    return {suffix: float(figures[key]) for key, suffix in names.items() if key in figures}
