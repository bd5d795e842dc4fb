"""Prometheus metrics: TrustGuard's own counters and histograms, scrape-time gauges, and /metrics.

Counters are incremented in one place (trustguard.metrics_events, from committed audit events), so no
service has to know about metrics. Gauges that describe the backlog (outbox, deliveries) are read
from the database when Prometheus scrapes, so they are right whichever process did the work.

Multi-process servers (gunicorn workers, Celery prefork): set PROMETHEUS_MULTIPROC_DIR to an empty
directory shared by every process of the host, before they start, and wipe it on deploy.
prometheus_client then writes each process's counters there, and /metrics adds them up
(see docs/OBSERVABILITY.md, "Metrics").
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

# Minutes to days: acknowledgement and decision times span both.
_DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600, 7 * 24 * 3600, float("inf"))

ESCALATIONS_CREATED = Counter("trustguard_escalations_created", "Escalations opened.", ["type"])
ESCALATIONS_CLOSED = Counter("trustguard_escalations_closed", "Escalations reaching a final state.", ["outcome"])
DECISIONS = Counter("trustguard_decisions", "Decisions recorded (approve, reject, defer).", ["decision", "role"])
SLA_BREACHES = Counter("trustguard_sla_breaches", "Acknowledgement deadlines missed.", ["role", "level"])
REESCALATIONS = Counter("trustguard_reescalations", "Moves up the escalation ladder.", ["role", "level"])
OTP_FAILURES = Counter("trustguard_otp_failures", "Refused one-time codes.", ["reason"])
DELIVERY_FAILURES = Counter("trustguard_delivery_failures", "Failed delivery attempts (webhook, email, SMS).",
                            ["kind", "outcome"])
EXPORTS = Counter("trustguard_exports", "Exports served or run.", ["dataset", "format", "mode"])
BROKER_PUBLISHES_SKIPPED = Counter(
    "trustguard_broker_publishes_skipped",
    "Task publishes (kicks) skipped because the broker failed or its breaker was open; a sweep does the work.",
    ["task", "reason"])
TIME_TO_DECISION = Histogram("trustguard_time_to_decision_seconds",
                             "From creation to the final human decision.", buckets=_DURATION_BUCKETS)

# Scrape-time gauges: name -> (help, function returning {labels-tuple or (): value}).
GaugeSource = Callable[[], dict[str, float]]
_GAUGE_SOURCES: list[tuple[str, str, GaugeSource]] = []


def register_gauge(name: str, documentation: str, source: GaugeSource) -> None:
    """Add a gauge computed at scrape time (a failing source is skipped, never breaks the scrape)."""
    _GAUGE_SOURCES[:] = [g for g in _GAUGE_SOURCES if g[0] != name]
    _GAUGE_SOURCES.append((name, documentation, source))


class ScrapeTimeCollector:
    def collect(self) -> Iterable[Metric]:
        for name, documentation, source in list(_GAUGE_SOURCES):
            try:
                values = source()
            except Exception:  # noqa: S112 - a broken gauge must not take the whole scrape down
                continue
            for suffix, value in values.items():
                yield GaugeMetricFamily(f"{name}_{suffix}" if suffix else name, documentation, value=float(value))


_SCRAPE_COLLECTOR = ScrapeTimeCollector()
REGISTRY.register(_SCRAPE_COLLECTOR)


def _is_multiprocess() -> bool:
    # The test django_prometheus's exporter makes: then it renders a fresh registry of the processes' files.
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ


def render_metrics(request: HttpRequest) -> HttpResponse:
    """django_prometheus's exporter view; with several processes, the scrape-time gauges are added after the
    files' metrics (they are read from the database, so every process would report the same figures)."""
    response: HttpResponse = ExportToDjangoView(request)
    if _is_multiprocess():
        gauges = CollectorRegistry()
        gauges.register(_SCRAPE_COLLECTOR)
        response.content = response.content + generate_latest(gauges)
    return response


def _authorised(request: HttpRequest) -> bool:
    if settings.DEBUG:
        return True
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
        return True
    user: Any = getattr(request, "user", None)
    return bool(user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False))


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. Outside DEBUG: a bearer token (TRUSTGUARD_METRICS_TOKEN) or a staff session."""
    if not _authorised(request):
        response = JsonResponse({"type": "https://trustguard.dev/problems/not-authenticated",
                                 "title": "Authentication required", "status": 401,
                                 "detail": "Use 'Authorization: Bearer <TRUSTGUARD_METRICS_TOKEN>' or a staff session."},
                                status=401, content_type="application/problem+json")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return render_metrics(request)
