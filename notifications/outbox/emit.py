"""The outbox writer: events are rows written in the business transaction; they exist iff it commits.

One writer for one event (a service) and for many (a sweep's chunk): COPY on PostgreSQL, whatever the
count, as the sweeps need it at 100k rows and a single row costs no more than an INSERT through the ORM.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import suppress

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from trustguard.broker import broker_publish_one
from trustguard.bulk import copy_rows
from trustguard.ids import uuid7_many
from trustguard.jsonutil import json_text
from trustguard.redis_client import fast_redis

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


# A kick is on its way and the relay it starts has not begun yet: requests skip their own (one kick per burst).
KICK_PENDING_KEY = "trustguard:relay:kick-pending"
# A kick that never arrives (no worker, a lost message) holds the others back this long at most.
KICK_PENDING_MS = 2000


def kick_relay() -> None:
    """Ask a worker to relay now: once per burst (best-effort: if the broker is down the relay_outbox sweep does it).

    With Redis, the first event after the relay began sets KICK_PENDING_KEY and publishes the kick; events
    committed while it is set publish nothing: the relay that kick starts clears the key (kick_taken) before it
    claims, so it sees them (each committed before its SET failed, so before the clear). A publish that fails
    clears the key, so the next event tries again. Without Redis (the embedded engine), every event kicks.
    """
    flags = fast_redis(str(settings.REDIS_URL)) if settings.REDIS_URL else None
    if flags is not None:
        try:
            if not flags.set(KICK_PENDING_KEY, b"1", nx=True, px=KICK_PENDING_MS):
                return
        except RedisError:
            flags = None
    if not broker_publish_one("notifications.relay") and flags is not None:
        kick_taken()


def kick_taken() -> None:
    """The relay begins (before it claims events): events committed from now on need a kick of their own."""
    if not settings.REDIS_URL:
        return
    with suppress(RedisError):  # else the key expires on its own (KICK_PENDING_MS)
        fast_redis(str(settings.REDIS_URL)).delete(KICK_PENDING_KEY)
