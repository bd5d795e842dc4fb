"""Periodic jobs: plain Celery tasks that beat runs from django-celery-beat's table, and `run_sweeps` runs once.

A job is a Celery task (`@shared_task`, named like its entry) in `<app>/jobs.py`, which the app imports in
AppConfig.ready(); it returns a short summary of what it did and must be safe to run twice at once (claim rows
with SKIP LOCKED or conditional updates). settings.PERIODIC_JOBS names every job with its default schedule, in
the order `run_sweeps` runs them.

The defaults are only *defaults*: beat's start-up (trustguard.beat.Scheduler) writes an entry into
django-celery-beat's table when none of that name exists yet, and never touches one that does, so an operator's
retime or pause in the admin survives restarts and deploys.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

HEARTBEAT_ENTRY = "heartbeat"
HEARTBEAT_TASK = "trustguard.heartbeat"


def periodic_jobs() -> list[str]:
    """Every job's task name, in run_sweeps' order."""
    return list(settings.PERIODIC_JOBS)


def default_entries() -> dict[str, dict[str, Any]]:
    """The beat entries the code asks for (entry name -> task and default schedule): every job, and the heartbeat."""
    entries = {HEARTBEAT_ENTRY: {"task": HEARTBEAT_TASK, "schedule": settings.BEAT_HEARTBEAT_INTERVAL_SECONDS}}
    entries.update({name: {"task": name, "schedule": schedule} for name, schedule in settings.PERIODIC_JOBS.items()})
    return entries


def periodic_entries_sync() -> list[str]:
    """Create the beat entries that do not exist yet with the code's default schedule; leave existing ones be.
    Returns the names created. Safe to run from two beats at once (the entry's name is unique)."""
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    wanted = default_entries()
    existing = set(PeriodicTask.objects.filter(name__in=wanted).values_list("name", flat=True))
    created = []
    for name, entry in wanted.items():
        if name in existing:
            continue
        with transaction.atomic():
            model_schedule, field = ModelEntry.to_model_schedule(entry["schedule"])
            _, made = PeriodicTask.objects.get_or_create(name=name, defaults={"task": entry["task"], field: model_schedule})
        if made:
            created.append(name)
    return created


def job_run(name: str) -> str:
    """Run one job now, in this process (run_sweeps): as a worker would run it, with its own correlation id
    unless the caller has one (trustguard.celery_context)."""
    from .celery import app

    if name not in settings.PERIODIC_JOBS:
        raise LookupError(f"no periodic job named {name!r}; known: {', '.join(settings.PERIODIC_JOBS)}")
    return str(app.tasks[name].apply(throw=True).get())
