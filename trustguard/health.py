"""/healthz: database, broker and beat heartbeat. 200 when all pass, 503 naming what failed."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from kombu import Connection

HEARTBEAT_KEY = "trustguard:beat-heartbeat"


def beat_heartbeat_write() -> None:
    """Called by the heartbeat task that beat schedules: proves beat, broker and a worker are alive."""
    cache.set(HEARTBEAT_KEY, timezone.now().isoformat(), timeout=24 * 3600)


def _check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": "ok", "vendor": connection.vendor}


def _check_broker() -> dict[str, Any]:
    with Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                    connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {"status": "ok", "transport": settings.CELERY_BROKER_URL.split("://", 1)[0]}


def _check_beat() -> dict[str, Any]:
    raw = cache.get(HEARTBEAT_KEY)
    if raw is None:
        return {"status": "fail", "detail": "no heartbeat from beat yet"}
    from datetime import datetime

    age = timezone.now() - datetime.fromisoformat(raw)
    status = "ok" if age <= settings.BEAT_HEARTBEAT_MAX_AGE else "fail"
    return {"status": status, "age_seconds": int(age.total_seconds())}


CHECKS = {"database": _check_database, "broker": _check_broker, "beat": _check_beat}


def run_checks() -> dict[str, dict[str, Any]]:
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # a health check reports failures; it never raises them
            results[name] = {"status": "fail", "detail": exc.__class__.__name__}
    return results


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = run_checks()
    failing = [name for name, result in checks.items() if result["status"] != "ok"]
    body: dict[str, Any] = {"status": "ok" if not failing else "fail", "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=200 if not failing else 503)
