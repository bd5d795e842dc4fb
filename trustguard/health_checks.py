"""The checks behind /healthz, as django-health-check checks that also keep the figures /healthz prints.

Critical ones (database, broker, beat) turn the answer into a 503 naming what failed; the others
(queue depth, outbox backlog, deliveries) report figures and warnings but keep it 200, because a
backlog is not a reason for a load balancer to drop the web. trustguard.health lists them and
renders the contract's JSON.

The outbox and the Delivery model are read through the app registry (plumbing never imports an app),
defensively: a deployment without them reports "not installed" instead of failing.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from datetime import datetime
from typing import Any, ClassVar

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.models import Count, Min, Model, Q, QuerySet
from django.utils import timezone
from health_check import Database, HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning
from kombu import Connection

HEARTBEAT_KEY = "trustguard:beat-heartbeat"


@dataclasses.dataclass
class Probe(HealthCheck):  # type: ignore[misc]  # django-health-check ships no type hints
    """A django-health-check check that keeps its figures: probe() returns {"status": "ok"|"warn"|"fail", ...}.

    run() raises as django-health-check expects (ServiceWarning for warn, ServiceUnavailable for fail),
    so each check also works in that library's own views and management command.
    """

    name: ClassVar[str] = ""
    critical: ClassVar[bool] = False
    report: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def probe(self) -> dict[str, Any]:
        raise NotImplementedError

    def run(self) -> None:
        self.report = self.probe()
        detail = str(self.report.get("detail") or self.name)
        if self.report["status"] == "warn":
            raise ServiceWarning(detail)
        if self.report["status"] != "ok":
            raise ServiceUnavailable(detail)


@dataclasses.dataclass
class DatabaseCheck(Probe, Database):  # type: ignore[misc]  # django-health-check ships no type hints
    name, critical = "database", True

    def probe(self) -> dict[str, Any]:
        Database.run(self)  # SELECT 1; ServiceUnavailable from the driver's error
        return {"status": "ok", "vendor": connections[self.alias].vendor}


@dataclasses.dataclass
class BrokerCheck(Probe):
    name, critical = "broker", True

    def probe(self) -> dict[str, Any]:
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


@dataclasses.dataclass
class BeatCheck(Probe):
    name, critical = "beat", True

    def probe(self) -> dict[str, Any]:
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


@dataclasses.dataclass
class QueueCheck(Probe):
    name = "queue"

    def probe(self) -> dict[str, Any]:
        depth = celery_queue_depth()
        if depth is None:
            return {"status": "ok", "detail": "queue depth not measurable on this transport"}
        status = "warn" if depth > settings.HEALTH_QUEUE_DEPTH_WARN else "ok"
        return {"status": status, "depth": depth, "warn_above": settings.HEALTH_QUEUE_DEPTH_WARN}


# Status values a delivery model may use for "waiting to be sent" and "given up on".
PENDING_STATUSES = ("pending", "queued", "scheduled", "retrying", "retry", "failed")
DEAD_STATUSES = ("dead", "dead_letter", "dead_lettered", "deadlettered")


def _model(app_label: str, name: str) -> type[Model] | None:
    try:
        return apps.get_model(app_label, name)
    except LookupError:
        return None


def _all(model: type[Model]) -> QuerySet[Any]:
    return model._default_manager.all()


def _fields(model: type[Model]) -> set[str]:
    return {f.name for f in model._meta.get_fields()}


def outbox_figures() -> dict[str, Any]:
    """Unrelayed outbox events and the age of the oldest one."""
    outbox = _model("notifications", "OutboxEvent")
    if outbox is None:
        return {"installed": False}
    agg = _all(outbox).filter(relayed_at__isnull=True).aggregate(oldest=Min("occurred_at"))
    backlog = _all(outbox).filter(relayed_at__isnull=True).count()
    age = (timezone.now() - agg["oldest"]).total_seconds() if agg["oldest"] else 0.0
    return {"installed": True, "backlog": backlog, "oldest_age_seconds": int(age)}


def delivery_figures() -> dict[str, Any]:
    """Pending deliveries, the oldest one's age, and dead letters, whatever the model's exact shape."""
    delivery = _model("notifications", "Delivery")
    if delivery is None:
        return {"installed": False}
    fields = _fields(delivery)
    if "status" in fields:
        pending_q = Q(status__in=PENDING_STATUSES)
        dead_q = Q(status__in=DEAD_STATUSES)
    else:
        done = [f for f in ("delivered_at", "succeeded_at", "dead_lettered_at", "dead_at") if f in fields]
        pending_q = Q(**{f"{done[0]}__isnull": True}) if done else Q(pk__in=[])
        for name in done[1:]:
            pending_q &= Q(**{f"{name}__isnull": True})
        dead_field = next((f for f in ("dead_lettered_at", "dead_at") if f in fields), None)
        dead_q = Q(**{f"{dead_field}__isnull": False}) if dead_field else Q(pk__in=[])
    if "dead_lettered_at" in fields and "status" in fields:
        dead_q |= Q(dead_lettered_at__isnull=False)
        pending_q &= Q(dead_lettered_at__isnull=True)
    created = next((f for f in ("created_at", "scheduled_at", "next_attempt_at") if f in fields), None)
    pending = _all(delivery).filter(pending_q)
    oldest = pending.aggregate(oldest=Min(created))["oldest"] if created else None
    figures: dict[str, Any] = {"installed": True}
    if "attempts" in fields:
        # Waiting for another try after a failed one: the "failing right now" signal.
        figures["retrying"] = pending.filter(attempts__gt=0).count()
    return {
        **figures,
        "pending": pending.count(),
        "oldest_pending_age_seconds": int((timezone.now() - oldest).total_seconds()) if oldest else 0,
        "dead_letters": _all(delivery).filter(dead_q).count(),
    }


@dataclasses.dataclass
class OutboxCheck(Probe):
    name = "outbox"

    def probe(self) -> dict[str, Any]:
        figures = outbox_figures()
        if not figures["installed"]:
            return {"status": "ok", "detail": "outbox not installed"}
        lagging = (figures["backlog"] > settings.HEALTH_OUTBOX_BACKLOG_WARN
                   or figures["oldest_age_seconds"] > settings.HEALTH_OUTBOX_AGE_WARN_SECONDS)
        return {"status": "warn" if lagging else "ok", **figures}


def audit_sealing_figures() -> dict[str, Any]:
    """Audit events written but not sealed onto their chain yet (audit.sealing) and the oldest one's age."""
    event = _model("audit", "AuditEvent")
    if event is None:
        return {"installed": False}
    agg = _all(event).filter(seq__isnull=True).aggregate(unsealed=Count("id"), oldest=Min("created_at"))
    age = max(0.0, (timezone.now() - agg["oldest"]).total_seconds()) if agg["oldest"] else 0.0
    return {"installed": True, "unsealed": agg["unsealed"], "oldest_age_seconds": int(age)}


@dataclasses.dataclass
class AuditSealingCheck(Probe):
    """The sealing lag: warn past AUDIT_SEAL_LAG_WARN_SECONDS, "fail" past AUDIT_SEAL_LAG_FAIL_SECONDS (a stopped
    sealer, or a chain stopped at an event altered before sealing). Not critical: requests are still audited."""

    name = "audit_sealing"

    def probe(self) -> dict[str, Any]:
        figures = audit_sealing_figures()
        if not figures["installed"]:
            return {"status": "ok", "detail": "audit not installed"}
        age = figures["oldest_age_seconds"]
        warn, fail = settings.AUDIT_SEAL_LAG_WARN_SECONDS, settings.AUDIT_SEAL_LAG_FAIL_SECONDS
        status = "fail" if age > fail else "warn" if age > warn else "ok"
        report = {"status": status, **figures, "warn_above_seconds": warn, "fail_above_seconds": fail}
        if status != "ok":
            report["detail"] = (f"audit events wait {age} s to be sealed onto their chain: is the audit.seal_pending "
                                "job running? (`manage.py audit_seal` names a chain stopped at an altered event)")
        return report


@dataclasses.dataclass
class DeliveriesCheck(Probe):
    name = "deliveries"

    def probe(self) -> dict[str, Any]:
        figures = delivery_figures()
        if not figures["installed"]:
            return {"status": "ok", "detail": "deliveries not installed"}
        # Dead letters need an operator (replay or discard); they do not make the service unhealthy.
        return {"status": "warn" if figures["dead_letters"] else "ok", **figures}


@dataclasses.dataclass
class ProvidersCheck(Probe):
    """The outside providers that carry messages to people (email, SMS, push): per provider the last successful
    delivery, the circuit breaker and an active check that sends nothing. Not critical: an open breaker or a mail
    relay that is down is a warning (deliveries wait), never a 503."""

    name = "providers"

    def probe(self) -> dict[str, Any]:
        from django.utils.module_loading import import_string

        path = getattr(settings, "HEALTH_PROVIDER_ROWS", "")
        if not path:
            return {"status": "ok", "detail": "no provider report configured"}
        report: dict[str, Any] = import_string(path)()
        return report
