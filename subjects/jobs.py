"""Periodic job of the subjects app: a Celery task that beat runs nightly (trustguard.periodic)."""

from celery import shared_task

from .services import subject_holds_sweep_all


@shared_task(name="subjects.sweep_holds", ignore_result=True, acks_late=True)
def sweep_holds() -> str:
    return f"erased {subject_holds_sweep_all(system='subjects.sweep_holds')} subjects whose legal hold ended"
