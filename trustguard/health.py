"""/healthz and /readyz: the checks of trustguard.health_checks (django-health-check checks), in the
contract's JSON: 200 {"status": "ok", "checks": {...}}, or 503 naming the failing critical checks.

The list of checks is here, in the project (it used to be registered by the reports app at start-up);
checks read the apps' tables through the app registry, so neither this module nor they import an app.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from .health_checks import (
    HEARTBEAT_KEY,
    AuditSealingCheck,
    BeatCheck,
    BrokerCheck,
    DatabaseCheck,
    DeliveriesCheck,
    OutboxCheck,
    Probe,
    ProvidersCheck,
    QueueCheck,
)

__all__ = ["CHECKS", "HEARTBEAT_KEY", "beat_heartbeat_write", "health_report", "healthz", "readyz", "run_checks"]

# In the order /healthz lists them.
CHECKS: tuple[type[Probe], ...] = (DatabaseCheck, BrokerCheck, BeatCheck, QueueCheck, OutboxCheck, DeliveriesCheck,
                                   ProvidersCheck, AuditSealingCheck)


def beat_heartbeat_write() -> None:
    """Called by the heartbeat task that beat schedules: proves beat, broker and a worker are alive."""
    cache.set(HEARTBEAT_KEY, timezone.now().isoformat(), timeout=24 * 3600)


def _outcome(check: Probe) -> dict[str, Any]:
    """The check's figures with its status; a check that raised before reporting is "fail" with the error's
    class (the driver's, when django-health-check wrapped it), never its message (it may name hosts)."""
    try:
        check.run()
    except Exception as exc:  # a health check reports failures; it never raises them
        if not check.report:
            cause = exc.__cause__ or exc
            return {"status": "fail", "detail": cause.__class__.__name__}
    return dict(check.report)


def run_checks() -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for check_class in CHECKS:
        result = _outcome(check_class())
        result["critical"] = check_class.critical
        results[check_class.name] = result
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
    result = _outcome(DatabaseCheck())
    status = 200 if result["status"] == "ok" else 503
    response = JsonResponse({"status": result["status"], "checks": {"database": result}}, status=status)
    response["Cache-Control"] = "no-store"
    return response
