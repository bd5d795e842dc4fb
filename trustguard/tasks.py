"""Project-level Celery tasks: the heartbeat, and the one task through which beat runs every job."""

from celery import shared_task

from .health import beat_heartbeat_write
from .jobs import run_job as _run_job


@shared_task(name="trustguard.heartbeat", ignore_result=True)
def heartbeat() -> None:
    beat_heartbeat_write()


@shared_task(name="trustguard.run_job", ignore_result=True, acks_late=True)
def run_job(name: str) -> str:
    """Run one registered periodic job (thin: the job itself holds the logic)."""
    return _run_job(name)
