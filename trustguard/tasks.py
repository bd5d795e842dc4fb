"""Project-level Celery tasks: the heartbeat that beat schedules (periodic jobs live in the apps' jobs.py)."""

from celery import shared_task

from .health import beat_heartbeat_write


@shared_task(name="trustguard.heartbeat", ignore_result=True)
def heartbeat() -> None:
    beat_heartbeat_write()
