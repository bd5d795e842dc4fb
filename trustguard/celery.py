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
from . import celery_context, celery_db  # noqa: E402, F401
