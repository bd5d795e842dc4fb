"""How long the outbox keeps what it has finished with.

The audit chain is the seven-year record; the outbox, its deliveries and the messages are operational
rows that would otherwise grow forever, and messages hold personal data (addresses, rendered bodies).
After `NOTIFICATION_RETENTION_DAYS`:
- delivered deliveries go;
- messages go once they are finished: an email or SMS delivered, any inbox item;
- relayed outbox events go once no delivery refers to them.
Dead letters and anything still pending stay: they are an operator's to replay or delete.

Each kind is deleted in batches of the oldest rows first (short transactions; a second run at the same
time only finds fewer rows), and every run that deleted something leaves one event on the platform's
audit chain with the counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import SystemActor, audit_record

from .models import Channel, Delivery, DeliveryStatus, Message, OutboxEvent

BATCH = 5000


@dataclass(frozen=True)
class Purged:
    deliveries: int
    messages: int
    events: int

    @property
    def total(self) -> int:
        return self.deliveries + self.messages + self.events


def _delete_in_batches(queryset: QuerySet[Any], order: tuple[str, ...], batch: int) -> int:
    """Delete what `queryset` selects, oldest first, `batch` rows per transaction; return how many rows of
    its own model went (a message's delivery goes with it, by CASCADE)."""
    model = queryset.model
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.order_by(*order).values_list("pk", flat=True)[:batch])
            if ids:
                deleted += model.objects.filter(pk__in=ids).delete()[1].get(model._meta.label, 0)
        if len(ids) < batch:
            return deleted


def notifications_purge(*, before: datetime | None = None, batch: int = BATCH) -> Purged:
    """Delete what finished before `before` (default: NOTIFICATION_RETENTION_DAYS ago)."""
    cutoff = before or timezone.now() - timedelta(days=settings.NOTIFICATION_RETENTION_DAYS)
    deliveries = _delete_in_batches(
        Delivery.objects.filter(kind=Delivery.Kind.WEBHOOK, status=DeliveryStatus.DELIVERED, delivered_at__lt=cutoff),
        ("pk",), batch)
    finished = Q(channel=Channel.IN_APP) | Q(delivery__status=DeliveryStatus.DELIVERED, delivery__delivered_at__lt=cutoff)
    messages = _delete_in_batches(Message.objects.filter(finished, created_at__lt=cutoff), ("created_at", "pk"), batch)
    events = _delete_in_batches(
        OutboxEvent.objects.filter(relayed_at__lt=cutoff).filter(~Exists(Delivery.objects.filter(event=OuterRef("pk")))),
        ("pk",), batch)
    purged = Purged(deliveries, messages, events)
    if purged.total:
        with transaction.atomic():
            audit_record(tenant_id=None, action=AuditAction.NOTIFICATIONS_PURGED, actor=SystemActor("notifications.purge"),
                         target_type="outbox", target_id="*",
                         details={"before": cutoff.isoformat(), "deliveries": deliveries, "messages": messages,
                                  "events": events})
    return purged
