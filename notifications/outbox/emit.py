"""The outbox writer: events are rows written in the business transaction; they exist iff it commits.

One writer for one event (a service) and for many (a sweep's chunk): COPY on PostgreSQL, whatever the
count, as the sweeps need it at 100k rows and a single row costs no more than an INSERT through the ORM.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from trustguard.broker import broker_publish_one
from trustguard.bulk import copy_rows
from trustguard.ids import uuid7_many
from trustguard.jsonutil import json_text

from ..models import OutboxEvent
from .catalogue import Event

_FIELDS = ("event_id", "tenant_id", "type", "version", "aggregate_type", "aggregate_id", "data", "occurred_at")


def event_emit(events: Event | Sequence[Event]) -> list[uuid.UUID]:
    """Write events (one, or a batch) in the current transaction; return their event ids, in order.

    Each event's data is serialised once (DjangoJSONEncoder, as a JSONField stores it); no model
    instances. After commit the relay is kicked; if the broker is down the kick is lost and the beat
    sweep (notifications.relay_outbox) relays the rows instead.
    """
    batch: Sequence[Event] = [events] if isinstance(events, Event) else events
    if not batch:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_emit must run inside the transaction of the change it announces")
    now = timezone.now()
    ids = uuid7_many(len(batch))
    copy_rows(OutboxEvent, _FIELDS, (
        (event_id, e.tenant_id, e.type, e.version, e.aggregate_type, str(e.aggregate_id), json_text(e.data), now)
        for event_id, e in zip(ids, batch, strict=True)))
    transaction.on_commit(kick_relay)
    return ids


def kick_relay() -> None:
    """Ask a worker to relay now (best-effort: if the broker is down the relay_outbox sweep does it)."""
    broker_publish_one("notifications.relay")
