"""The Celery app. Configuration lives in Django settings under the CELERY_ namespace."""

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trustguard.settings")
# Redis as broker through kombu's transport with one fix: a worker reconnects after a broker outage instead of
# exiting (trustguard/broker_redis.py).
TRANSPORT_ALIASES.update({"redis": "trustguard.broker_redis:Transport", "rediss": "trustguard.broker_redis:Transport"})

app = Celery("trustguard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Signal handlers: correlation ids flow into tasks; database connections follow Django's rules.
from celery.signals import beat_init, worker_init  # noqa: E402

from . import celery_context, celery_db  # noqa: E402, F401


@worker_init.connect(dispatch_uid="trustguard_refuse_unprotected_worker")
@beat_init.connect(dispatch_uid="trustguard_refuse_unprotected_beat")
def refuse_to_start_unprotected(**kwargs: object) -> None:
    """Worker and beat, like the web process (wsgi.py), refuse to start without the database's protections.

    SystemExit, not the check's exception: Celery logs and swallows a signal receiver's Exception. The apps are
    loaded without django.setup(), which would configure logging again and lose Celery's log lines (its handlers
    write to a redirected stderr).
    """
    from django.apps import apps
    from django.conf import settings
    from django.core.management.base import SystemCheckError

    from .checks import refuse_to_start_unprotected as check

    if not apps.ready:
        apps.populate(settings.INSTALLED_APPS)
    try:
        check()
    except SystemCheckError as exc:
        raise SystemExit(str(exc)) from exc
