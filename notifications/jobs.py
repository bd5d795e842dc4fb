"""Periodic jobs of the outbox: Celery tasks that beat runs (trustguard.periodic); `run_sweeps` runs them once."""

from __future__ import annotations

from celery import shared_task

from .deliveries.attempts import deliveries_deliver_due
from .relay import outbox_relay
from .retention import notifications_purge


@shared_task(name="notifications.relay_outbox", ignore_result=True, acks_late=True)
def relay_outbox() -> str:
    """Safety net for lost on-commit kicks (broker down, worker killed): relay every unrelayed event."""
    return f"relayed {outbox_relay()} events"


@shared_task(name="notifications.purge", ignore_result=True, acks_late=True)
def purge() -> str:
    """Finished deliveries, messages and events older than the retention (notifications/retention.py)."""
    purged = notifications_purge()
    return f"purged {purged.deliveries} deliveries, {purged.messages} messages, {purged.events} events"


@shared_task(name="notifications.deliver_due", ignore_result=True, acks_late=True)
def deliver_due() -> str:
    outcomes = deliveries_deliver_due()
    if not outcomes:
        return "nothing due"
    return ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
