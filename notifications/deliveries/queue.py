"""Handing deliveries to workers, and the keys that keep them in order per target and aggregate."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from trustguard.broker import broker_publish

from ..models import OutboxEvent


def kick_deliveries(delivery_ids: Iterable[int]) -> None:
    """Queue the attempts of new or newly due deliveries, over one broker connection.

    Up to DELIVERY_KICK_TASKS ids: one notifications.deliver task each. More (a relay batch): that many
    notifications.deliver_many tasks, each with a consecutive slice of the ids, so publishing stays a
    fixed cost per batch while the workers still get one task per concurrency slot. Best-effort
    (trustguard.broker): if the broker is down the deliveries stay due rows, and the
    notifications.deliver_due sweep sends them instead.
    """
    ids = list(delivery_ids)
    if not ids:
        return
    tasks = min(len(ids), settings.DELIVERY_KICK_TASKS)
    size, extra = divmod(len(ids), tasks)
    messages: list[tuple[str, list[Any]]] = []
    start = 0
    for n in range(tasks):
        chunk = ids[start:start + size + (1 if n < extra else 0)]
        start += len(chunk)
        if len(chunk) == 1:
            messages.append(("notifications.deliver", [chunk[0]]))
        else:
            messages.append(("notifications.deliver_many", [chunk]))
    broker_publish(messages)


def aggregate_key(event: OutboxEvent) -> str:
    """Deliveries of one target go out in event order per aggregate (an escalation): this names the aggregate."""
    return f"{event.aggregate_type}:{event.aggregate_id}"[:140]


def address_key(address: str) -> str:
    # Ordering key without the address itself (the admin shows keys; addresses are PII).
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:32]
