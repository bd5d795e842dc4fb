"""Database connections in Celery tasks follow Django's rules, as web requests do (see CELERY_DB_REUSE_MAX).

Before and after each task, close_old_connections() closes this thread's connections that are past
CONN_MAX_AGE, or that saw an error and no longer answer; the others are kept for the next task.
"""

from __future__ import annotations

from typing import Any

from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections


@task_prerun.connect(dispatch_uid="trustguard_db_prerun")
@task_postrun.connect(dispatch_uid="trustguard_db_postrun")
def close_obsolete_connections(task: Any = None, **kwargs: Any) -> None:
    request = getattr(task, "request", None)
    if not getattr(request, "is_eager", False):  # an eager task runs inside its caller's transaction
        close_old_connections()
