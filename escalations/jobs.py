"""The escalations app's periodic jobs (trustguard.jobs): beat runs them, `run_sweeps` runs them once."""

from __future__ import annotations

from trustguard.jobs import periodic_job

from .sweeps import sweep_deadlines as _sweep


@periodic_job("escalations.sweep_deadlines", order=10)
def sweep_deadlines() -> str:
    """Deferral wake-ups, expiry, re-escalation up the ladder, reminders (escalations.sweeps)."""
    return _sweep().summary()
