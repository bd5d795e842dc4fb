"""Project-level periodic tasks."""

from celery import shared_task

from .health import beat_heartbeat_write


@shared_task(name="trustguard.heartbeat", ignore_result=True)
def heartbeat() -> None:
    beat_heartbeat_write()
