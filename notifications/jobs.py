"""Periodic jobs of the outbox (beat runs them; `manage.py run_sweeps` runs them once)."""

from __future__ import annotations

from trustguard.jobs import periodic_job

from . import services
from .retention import notifications_purge


@periodic_job("notifications.relay_outbox", order=200)
def relay_outbox() -> str:
    """Safety net for lost on-commit kicks (broker down, worker killed): relay every unrelayed event."""
    return f"relayed {services.outbox_relay()} events"


@periodic_job("notifications.purge", order=900)
def purge() -> str:
    """Finished deliveries, messages and events older than the retention (notifications/retention.py)."""
    purged = notifications_purge()
    return f"purged {purged.deliveries} deliveries, {purged.messages} messages, {purged.events} events"


@periodic_job("notifications.deliver_due", order=210)
def deliver_due() -> str:
    outcomes = services.deliveries_deliver_due()
    if not outcomes:
        return "nothing due"
    return ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
