"""/healthz: a registry of checks. Critical ones (database, broker, beat) turn the answer into a 503
naming what failed; the others (queue depth, outbox backlog, deliveries...) report figures and
warnings but keep it 200, because a backlog is not a reason for a load balancer to drop the web.

Apps add their own checks with `register_check` at AppConfig.ready(), so this module never
imports an app (an app that lacks a model simply registers nothing, or a check that says so).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from kombu import Connection

HEARTBEAT_KEY = "trustguard:beat-heartbeat"
CheckFunc = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class HealthCheck:
    name: str
    func: CheckFunc
    critical: bool


_REGISTRY: dict[str, HealthCheck] = {}


def register_check(name: str, func: CheckFunc | None = None, *, critical: bool = False) -> Any:
    """Add (or replace) the check `name`. A check returns {"status": "ok"|"warn"|"fail", ...}; raising is "fail"."""

    def decorator(f: CheckFunc) -> CheckFunc:
        _REGISTRY[name] = HealthCheck(name=name, func=f, critical=critical)
        return f

    return decorator(func) if func is not None else decorator


def registered_checks() -> list[HealthCheck]:
    return list(_REGISTRY.values())


def beat_heartbeat_write() -> None:
    """Called by the heartbeat task that beat schedules: proves beat, broker and a worker are alive."""
    cache.set(HEARTBEAT_KEY, timezone.now().isoformat(), timeout=24 * 3600)


@register_check("database", critical=True)
def _check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": "ok", "vendor": connection.vendor}


@register_check("broker", critical=True)
def _check_broker() -> dict[str, Any]:
    """Can a connection be made (a file written, for the filesystem broker) now; and this process's breaker
    for publishing (trustguard.broker), which says whether requests are skipping their kicks."""
    from .broker import broker_breaker_report, broker_transport, publish_connection_options

    transport = broker_transport()
    result: dict[str, Any] = {"transport": transport, **broker_breaker_report()}
    try:
        if transport == "filesystem":
            _probe_broker_folder()
        else:
            with Connection(settings.CELERY_BROKER_URL, transport_options=publish_connection_options(),
                            connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=0, timeout=2)
    except Exception as exc:
        return {"status": "fail", "detail": exc.__class__.__name__, **result}
    return {"status": "ok", **result}


def _probe_broker_folder() -> None:
    """kombu's filesystem transport never fails to "connect": write and remove a file where messages go
    (a full disk or a folder without permissions fails here as a publish would)."""
    folder = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_out") or "")
    path = os.path.join(folder, f".healthz-{os.getpid()}-{threading.get_ident()}")
    with open(path, "wb") as probe:
        probe.write(b"x")
        probe.flush()
        os.fsync(probe.fileno())
    os.unlink(path)


@register_check("beat", critical=True)
def _check_beat() -> dict[str, Any]:
    raw = cache.get(HEARTBEAT_KEY)
    if raw is None:
        return {"status": "fail", "detail": "no heartbeat from beat yet"}
    age = timezone.now() - datetime.fromisoformat(raw)
    status = "ok" if age <= settings.BEAT_HEARTBEAT_MAX_AGE else "fail"
    return {"status": status, "age_seconds": int(age.total_seconds()),
            "max_age_seconds": int(settings.BEAT_HEARTBEAT_MAX_AGE.total_seconds())}


def celery_queue_depth() -> int | None:
    """Messages waiting in the default Celery queue (Redis: LLEN of the list kombu uses; RabbitMQ: the
    queue's message count; the filesystem broker: its message files)."""
    from .broker import broker_transport

    queue = getattr(settings, "CELERY_DEFAULT_QUEUE_NAME", "celery")
    transport = broker_transport()
    if transport in ("redis", "rediss"):
        import redis

        client = redis.Redis.from_url(str(settings.CELERY_BROKER_URL), socket_connect_timeout=2, socket_timeout=2)
        try:
            # kombu keeps prioritised messages in sibling lists "<queue>\x06\x16<priority>".
            pipe = client.pipeline()
            for key in [queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9))]:
                pipe.llen(key)
            return sum(int(n) for n in pipe.execute())
        finally:
            client.close()
    if transport in ("amqp", "amqps", "pyamqp"):
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=0, timeout=2)
            return int(conn.default_channel.queue_declare(queue=queue, passive=True).message_count)
    folder = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in") or "")
    if folder and os.path.isdir(folder):
        # kombu's filesystem transport: one file per waiting message.
        return len([entry for entry in os.scandir(folder) if entry.is_file() and entry.name.endswith(".msg")])
    return None


@register_check("queue")
def _check_queue() -> dict[str, Any]:
    depth = celery_queue_depth()
    if depth is None:
        return {"status": "ok", "detail": "queue depth not measurable on this transport"}
    status = "warn" if depth > settings.HEALTH_QUEUE_DEPTH_WARN else "ok"
    return {"status": status, "depth": depth, "warn_above": settings.HEALTH_QUEUE_DEPTH_WARN}


def run_checks() -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for check in registered_checks():
        try:
            result = dict(check.func())
        except Exception as exc:  # a health check reports failures; it never raises them
            result = {"status": "fail", "detail": exc.__class__.__name__}
        result["critical"] = check.critical
        results[check.name] = result
    return results


def health_report() -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 503 when a critical check is not ok, naming it under "failing"."""
    checks = run_checks()
    failing = [name for name, r in checks.items() if r["critical"] and r["status"] != "ok"]
    warnings = [name for name, r in checks.items() if not r["critical"] and r["status"] != "ok"]
    body: dict[str, Any] = {"status": "ok" if not failing else "fail", "checks": checks}
    if failing:
        body["failing"] = failing
    if warnings:
        body["warnings"] = warnings
    return (200 if not failing else 503), body


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    status, body = health_report()
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Can this web process serve requests: it answers and reaches the database. For load balancers and the
    container's health check. Not /healthz: a broker or beat outage turns that 503, and taking every web
    server out of rotation then would turn a broker outage into a full one (the API works without the broker)."""
    try:
        result = _check_database()
        status = 200
    except Exception as exc:
        result, status = {"status": "fail", "detail": exc.__class__.__name__}, 503
    response = JsonResponse({"status": result["status"], "checks": {"database": result}}, status=status)
    response["Cache-Control"] = "no-store"
    return response
