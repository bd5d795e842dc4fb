"""Periodic jobs of the reports app: Celery tasks that beat runs (trustguard.periodic); `run_sweeps` runs them once."""

from celery import shared_task

from .services import export_jobs_kick_queued, export_jobs_purge


@shared_task(name="reports.purge_exports", ignore_result=True, acks_late=True)
def purge_exports() -> str:
    return f"purged {export_jobs_purge()} export jobs"


@shared_task(name="reports.kick_queued_exports", ignore_result=True, acks_late=True)
def kick_queued_exports() -> str:
    return f"kicked {export_jobs_kick_queued()} export jobs waiting for a worker"
