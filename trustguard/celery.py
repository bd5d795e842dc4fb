"""The Celery app. Configuration lives in Django settings under the CELERY_ namespace."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trustguard.settings")

app = Celery("trustguard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Signal handlers: correlation ids flow into tasks; database connections follow Django's rules.
from . import celery_context, celery_db  # noqa: E402, F401
