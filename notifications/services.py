"""Outbox writes. Delivery (relay, webhooks, channels) builds on these rows."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from trustguard.jsonutil import to_jsonable

from .models import OutboxEvent


def event_emit(*, tenant_id: int, type: str, aggregate_type: str, aggregate_id: object, data: dict[str, Any],
               version: int = 1) -> OutboxEvent:
    """Write one event in the current transaction; it exists iff the transaction commits."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_emit must run inside the transaction of the change it announces")
    return OutboxEvent.objects.create(
        tenant_id=tenant_id,
        type=type,
        version=version,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        data=to_jsonable(data),
        occurred_at=timezone.now(),
    )
