"""The escalations app's periodic jobs: Celery tasks that beat runs (trustguard.periodic); `run_sweeps` runs them once."""

from __future__ import annotations

from celery import shared_task

from .sweeps import sweep_deadlines as _sweep


@shared_task(name="escalations.sweep_deadlines", ignore_result=True, acks_late=True)
def sweep_deadlines() -> str:
    """Deferral wake-ups, expiry, re-escalation up the ladder, reminders (escalations.sweeps)."""
    return _sweep().summary()


@shared_task(name="escalations.sweep_delegations", ignore_result=True, acks_late=True)
def sweep_delegations() -> str:
    """Out-of-office starts and ends announced; cases nobody present can act on flagged (escalations.standins)."""
    from .standins import standins_sweep

    return standins_sweep()
