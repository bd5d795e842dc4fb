"""Periodic jobs are plain Celery tasks in django-celery-beat's table: the code's schedules are defaults for entries
that do not exist yet, so what an operator changes in the admin (retime, pause) survives a restart of beat."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from trustguard.beat import Scheduler
from trustguard.celery import app
from trustguard.periodic import periodic_jobs

# transaction=True: beat closes "old" database connections as it sets up, as it does between ticks.
pytestmark = pytest.mark.django_db(transaction=True)


def beat_starts() -> Scheduler:
    """What `celery -A trustguard beat` does at start: set up its scheduler (settings.CELERY_BEAT_SCHEDULER)."""
    assert settings.CELERY_BEAT_SCHEDULER == "trustguard.beat:Scheduler"
    return Scheduler(app=app)


def test_the_first_start_writes_every_job_as_its_own_task_with_the_default_schedule():
    scheduler = beat_starts()

    entries = {entry.name: entry for entry in PeriodicTask.objects.all()}
    assert set(periodic_jobs()) | {"heartbeat"} <= set(entries)
    for job in periodic_jobs():
        assert (entries[job].task, entries[job].args, entries[job].enabled) == (job, "[]", True)
        assert job in app.tasks, f"{job} is not a registered Celery task"
    assert entries["escalations.sweep_deadlines"].interval.every == settings.SWEEP_INTERVAL_SECONDS
    assert entries["audit.verify_chains"].crontab.hour == "3"
    assert scheduler.schedule["escalations.sweep_deadlines"].schedule.run_every == timedelta(
        seconds=settings.SWEEP_INTERVAL_SECONDS)


def test_an_operators_retime_and_pause_survive_a_restart_of_beat():
    beat_starts()
    # In the admin: sweep_deadlines every 15 seconds; the nightly notifications purge paused.
    sweep = PeriodicTask.objects.get(name="escalations.sweep_deadlines")
    sweep.interval, _ = IntervalSchedule.objects.get_or_create(every=15, period=IntervalSchedule.SECONDS)
    sweep.save()
    purge = PeriodicTask.objects.get(name="notifications.purge")
    purge.enabled = False
    purge.save()
    PeriodicTask.objects.filter(name="reports.purge_exports").delete()

    scheduler = beat_starts()  # the restart

    sweep.refresh_from_db()
    purge.refresh_from_db()
    assert (sweep.interval.every, sweep.interval.period) == (15, IntervalSchedule.SECONDS)
    assert scheduler.schedule["escalations.sweep_deadlines"].schedule.run_every == timedelta(seconds=15)
    assert purge.enabled is False and "notifications.purge" not in scheduler.schedule
    assert PeriodicTask.objects.get(name="reports.purge_exports").interval.every == 3600  # a missing one comes back


def test_entries_of_the_retired_registry_task_keep_their_schedule_and_run_their_own_task():
    migration = importlib.import_module("trustguard.migrations.0003_beat_entries_run_their_own_task")
    every_15s, _ = IntervalSchedule.objects.get_or_create(every=15, period=IntervalSchedule.SECONDS)
    nightly, _ = CrontabSchedule.objects.get_or_create(hour="4", minute="0")
    PeriodicTask.objects.create(name="escalations.sweep_deadlines", task="trustguard.run_job",
                                args='["escalations.sweep_deadlines"]', interval=every_15s)
    PeriodicTask.objects.create(name="audit.verify_chains", task="trustguard.run_job", args='["audit.verify_chains"]',
                                crontab=nightly, enabled=False)

    migration.entries_run_their_own_task(apps, None)
    beat_starts()

    sweep = PeriodicTask.objects.get(name="escalations.sweep_deadlines")
    verify = PeriodicTask.objects.get(name="audit.verify_chains")
    assert (sweep.task, sweep.args, sweep.interval.every) == ("escalations.sweep_deadlines", "[]", 15)
    assert (verify.task, verify.args, verify.crontab.hour, verify.enabled) == ("audit.verify_chains", "[]", "4", False)


def test_run_sweeps_runs_every_job_once_in_order(capsys):
    call_command("run_sweeps")

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == periodic_jobs()
    assert lines[0].startswith("escalations.sweep_deadlines: ")


def test_run_sweeps_names_an_unknown_job():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no periodic job named nope"):
        call_command("run_sweeps", only=["nope"])
