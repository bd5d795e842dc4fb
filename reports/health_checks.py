"""Health checks of the delivery pipeline, registered with trustguard.health at start-up.

The outbox is read through the app registry, and the Delivery model (notifications, built on
another branch) defensively: a deployment without it reports "not installed" instead of failing.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.db.models import Min, Model, Q, QuerySet
from django.utils import timezone

from trustguard.health import register_check

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


def _check_outbox() -> dict[str, Any]:
    figures = outbox_figures()
    if not figures["installed"]:
        return {"status": "ok", "detail": "outbox not installed"}
    lagging = (figures["backlog"] > settings.HEALTH_OUTBOX_BACKLOG_WARN
               or figures["oldest_age_seconds"] > settings.HEALTH_OUTBOX_AGE_WARN_SECONDS)
    return {"status": "warn" if lagging else "ok", **figures}


def _check_deliveries() -> dict[str, Any]:
    figures = delivery_figures()
    if not figures["installed"]:
        return {"status": "ok", "detail": "deliveries not installed"}
    # Dead letters need an operator (replay or discard); they do not make the service unhealthy.
    return {"status": "warn" if figures["dead_letters"] else "ok", **figures}


def register() -> None:
    register_check("outbox", _check_outbox)
    register_check("deliveries", _check_deliveries)
