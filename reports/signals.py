"""Metrics from the audit trail: every counted event already writes an audit row, so one receiver
on AuditEvent maps actions to counters and no service needs to import metrics.

Counting happens on commit: a rolled-back change was never an event. (A refused OTP commits its
audit row on purpose, so failures are counted too.)
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save

from audit.models import AuditEvent
from trustguard import metrics

from . import health_checks

FINAL_FROM_DECISION = {"approved", "rejected"}
CLOSING_ACTIONS = {"escalation.cancelled": "cancelled", "escalation.expired": "expired",
                   "escalation.executed": "executed"}
OTP_FAILURE_ACTIONS = {"otp.failed": "wrong_code", "otp.replay_refused": "replay", "otp.locked_out": "locked_out"}
DELIVERY_FAILURE_ACTIONS = {"delivery.failed": "failed", "delivery.dead_lettered": "dead_lettered",
                            "webhook.delivery_failed": "failed", "webhook.dead_lettered": "dead_lettered"}


def _state(event: AuditEvent, key: str) -> Any:
    for side in (event.before, event.after):
        if isinstance(side, dict) and side.get(key) is not None:
            return side[key]
    return None


def _observe_decision_time(event: AuditEvent) -> None:
    from escalations.models import Escalation  # the top app may read the case; the leaf never does

    row = Escalation.objects.filter(pk=event.target_id).values_list("created_at", flat=True).first()
    if row is not None:
        metrics.TIME_TO_DECISION.observe(max(0.0, (event.created_at - row).total_seconds()))


def count_audit_event(event: AuditEvent) -> None:
    """Map one committed audit event to the counters it stands for."""
    action, details = event.action, event.details or {}
    if action == "escalation.created":
        metrics.ESCALATIONS_CREATED.labels(type=str(details.get("type") or _escalation_type(event))).inc()
    elif action == "decision.recorded":
        decision = details.get("decision") or {}
        metrics.DECISIONS.labels(decision=str(decision.get("decision", "")), role=str(decision.get("role", ""))).inc()
        status = (event.after or {}).get("status")
        if status in FINAL_FROM_DECISION:
            metrics.ESCALATIONS_CLOSED.labels(outcome=status).inc()
            _observe_decision_time(event)
    elif action == "escalation.approved" and details.get("auto_approved"):
        metrics.ESCALATIONS_CLOSED.labels(outcome="auto_approved").inc()
    elif action in CLOSING_ACTIONS:
        metrics.ESCALATIONS_CLOSED.labels(outcome=CLOSING_ACTIONS[action]).inc()
    elif action == "escalation.escalated":
        metrics.REESCALATIONS.labels(role=str(_state(event, "assigned_role") or ""),
                                     level=str(_state(event, "escalation_level") or 0)).inc()
    elif action == "escalation.sla_breached":
        metrics.SLA_BREACHES.labels(role=str(_state(event, "assigned_role") or ""),
                                    level=str(_state(event, "escalation_level") or 0)).inc()
    elif action in OTP_FAILURE_ACTIONS:
        metrics.OTP_FAILURES.labels(reason=OTP_FAILURE_ACTIONS[action]).inc()
    elif action in DELIVERY_FAILURE_ACTIONS:
        metrics.DELIVERY_FAILURES.labels(kind=DELIVERY_FAILURE_ACTIONS[action]).inc()


def _escalation_type(event: AuditEvent) -> str:
    from escalations.models import Escalation

    return Escalation.objects.filter(pk=event.target_id).values_list("type", flat=True).first() or ""


def _on_audit_event(sender: type[AuditEvent], instance: AuditEvent, created: bool, **kwargs: Any) -> None:
    if created:
        transaction.on_commit(lambda: count_audit_event(instance))


def connect() -> None:
    post_save.connect(_on_audit_event, sender=AuditEvent, dispatch_uid="reports.metrics.audit_event")
    metrics.register_gauge("trustguard_outbox", "Outbox events not yet relayed (backlog) and the oldest one's age.",
                           lambda: _figures(health_checks.outbox_figures(), {"backlog": "backlog",
                                                                             "oldest_age_seconds": "lag_seconds"}))
    metrics.register_gauge("trustguard_deliveries", "Deliveries waiting, the oldest one's age, and dead letters.",
                           lambda: _figures(health_checks.delivery_figures(), {
                               "pending": "pending", "oldest_pending_age_seconds": "oldest_pending_age_seconds",
                               "dead_letters": "dead_letters"}))


def _figures(figures: dict[str, Any], names: dict[str, str]) -> dict[str, float]:
    if not figures.get("installed"):
        return {}
    return {suffix: float(figures[key]) for key, suffix in names.items()}
