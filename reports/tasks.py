"""Thin tasks: an id in, one service call."""

from celery import shared_task

from .services import EXPORT_TASK, export_job_run


# An export of a million rows takes minutes: past the project-wide 300 s limit.
@shared_task(name=EXPORT_TASK, ignore_result=True, acks_late=True, time_limit=3600, soft_time_limit=3500)
def export_job_run_task(job_id: str) -> None:
    export_job_run(job_id=job_id)
