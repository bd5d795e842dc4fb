"""Outbox writes. Delivery (relay, webhooks, channels) builds on these rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from trustguard.bulk import bulk_insert_rows
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


@dataclass(frozen=True)
class EventSpec:
    """One event for event_emit_many: the same fields event_emit takes."""

    tenant_id: int
    type: str
    aggregate_type: str
    aggregate_id: object
    data: dict[str, Any]
    version: int = 1


def event_emit_many(events: Sequence[EventSpec]) -> list[OutboxEvent]:
    """event_emit for a batch (sweeps): one row per event, inserted in bulk in the current transaction."""
    if not events:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_emit_many must run inside the transaction of the changes it announces")
    now = timezone.now()
    rows = [OutboxEvent(tenant_id=e.tenant_id, type=e.type, version=e.version, aggregate_type=e.aggregate_type,
                        aggregate_id=str(e.aggregate_id), data=to_jsonable(e.data), occurred_at=now) for e in events]
    bulk_insert_rows(OutboxEvent, rows)  # rows keep pk None: the ids are the database's
    return rows
