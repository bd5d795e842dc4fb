"""Celery beat's scheduler: django-celery-beat's DatabaseScheduler, started our way.

At start it (1) writes the code's default entries that do not exist yet and never overwrites one that does
(trustguard.periodic: django-celery-beat's own start-up rewrites every entry's schedule from settings, which
silently undid an operator's retime), and (2) sends the heartbeat at once, so /healthz turns 200 as soon as a
worker runs it instead of one heartbeat interval later.
"""

from __future__ import annotations

import logging

from django_celery_beat.schedulers import DatabaseScheduler

from .broker import broker_publish_one
from .periodic import HEARTBEAT_TASK, periodic_entries_sync

logger = logging.getLogger(__name__)


class Scheduler(DatabaseScheduler):  # type: ignore[misc]  # django-celery-beat ships no type hints
    def setup_schedule(self) -> None:
        created = periodic_entries_sync()
        if created:
            logger.info("beat entries created with their default schedules: %s", ", ".join(created))
        self.install_default_entries(self.schedule)
        # The first beat at start, not one interval later. Best-effort (a broker that is down costs at most the
        # publish timeout); the schedule sends the next one anyway.
        broker_publish_one(HEARTBEAT_TASK)
