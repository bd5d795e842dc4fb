"""The relay: fans unrelayed outbox events out to their webhook deliveries and messages.

Guarantees (docs/WEBHOOKS.md):
- An event row exists iff the business transaction commits (outbox.emit.event_emit runs inside it).
- The relay claims and marks a batch of unrelayed rows with SKIP LOCKED and fans the batch out to
  its deliveries and messages in the same transaction (set-wise: a few statements per batch, not
  per event), so an event is fanned out exactly once. It has no high-water mark: a row that
  commits late (a lower id committed after higher ones were relayed) is still unrelayed and is
  picked up by the next pass.
- Delivering is deliveries.attempts' job (at least once, in order per aggregate and target).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import ForeignKey
from django.utils import timezone

from trustguard.bulk import bulk_insert_columns

from . import sql
from .consumers import consumer_for
from .deliveries.queue import aggregate_key, kick_deliveries
from .inbox import inbox_items_done
from .messages import dispatch_messages
from .models import Delivery, OutboxEvent, WebhookEndpoint
from .outbox.catalogue import INTERNAL_TYPES
from .registry import Recipient, recipients_for, recipients_for_many

logger = logging.getLogger(__name__)


# A batch is one transaction: big enough that its fixed cost (claim, endpoint and recipient queries, the
# inserts, the mark, the kicks) is spread over many events, small enough that its locks are held briefly.
RELAY_BATCH = 1000
RELAY_MAX_BATCHES = 10


def outbox_relay(*, batch: int = RELAY_BATCH, max_batches: int = RELAY_MAX_BATCHES) -> int:
    """Fan out unrelayed events (oldest first) to their deliveries and messages; return how many."""
    return outbox_relay_step(batch=batch, max_batches=max_batches)[0]


def outbox_relay_step(*, batch: int = RELAY_BATCH, max_batches: int = RELAY_MAX_BATCHES) -> tuple[int, bool]:
    """outbox_relay, also saying whether it stopped at max_batches with events probably still waiting.

    Batches start at a tenth of `batch` and double up to it: the first deliveries of a burst are kicked
    after a small batch's commit, not after a full one's.
    """
    total = 0
    size = max(1, batch // 10)
    for _ in range(max_batches):
        relayed = _relay_batch(size)
        total += relayed
        if relayed < size:
            return total, False
        size = min(batch, size * 2)
    return total, True


def _relay_batch(batch: int) -> int:
    """Claim up to `batch` unrelayed events and fan them out in one transaction, set-wise.

    1. Claim and mark them (SKIP LOCKED, oldest first); load their tenants and the tenants' active
       endpoints once.
    2. Insert every webhook delivery of the batch in one statement.
    3. Resolve recipients, addresses and messages for the whole batch inside a savepoint. If anything
       there fails, redo it event by event, each in its own savepoint: a broken resolver or template
       loses only that event's messages (logged), never the webhooks, and never blocks the queue.
    4. After commit, kick every new delivery.
    """
    with transaction.atomic():
        now = timezone.now()
        events = sql.claim_events(batch, now)
        if not events:
            return 0
        tenant_ids = {e.tenant_id for e in events}
        _attach_tenants(events, tenant_ids)
        endpoints_by_tenant: dict[int, list[WebhookEndpoint]] = {}
        for endpoint in WebhookEndpoint.objects.filter(tenant_id__in=tenant_ids, is_active=True):
            endpoints_by_tenant.setdefault(endpoint.tenant_id, []).append(endpoint)
        new_deliveries = _insert_webhook_deliveries(events, endpoints_by_tenant, now)
        try:
            with transaction.atomic():
                new_deliveries += dispatch_messages(events, recipients_for_many, now)
        except Exception:
            logger.warning("notification dispatch failed for a batch of %d events; retrying event by event",
                           len(events), exc_info=True)
            for event in events:
                try:
                    with transaction.atomic():
                        new_deliveries += dispatch_messages([event], _recipients_one_by_one, now)
                except Exception:
                    logger.exception("notification dispatch failed for event %s (%s)", event.event_id, event.type)
        for event in events:
            consume = consumer_for(event.type)
            if consume is None:
                continue
            try:
                with transaction.atomic():
                    consume(event)
            except Exception:
                logger.exception("consuming event %s (%s) failed", event.event_id, event.type)
        try:
            with transaction.atomic():
                inbox_items_done(events, now)
        except Exception:
            # Never hold the queue for this: the items just keep saying what they said.
            logger.exception("marking inbox items done failed for a batch of %d events", len(events))
        transaction.on_commit(lambda: kick_deliveries(new_deliveries))
    return len(events)


def _attach_tenants(events: Sequence[OutboxEvent], tenant_ids: set[int]) -> None:
    """The envelope names the tenant: one query for the batch (not one per event, nor one object per row
    as select_related would build)."""
    field = OutboxEvent._meta.get_field("tenant")
    assert isinstance(field, ForeignKey) and not isinstance(field.related_model, str)
    tenants = field.related_model._default_manager.in_bulk(tenant_ids)
    for event in events:
        field.set_cached_value(event, tenants[event.tenant_id])


def _insert_webhook_deliveries(events: Sequence[OutboxEvent], endpoints_by_tenant: dict[int, list[WebhookEndpoint]],
                               now: datetime) -> list[int]:
    """One delivery per event and subscribed endpoint, inserted in one statement; their ids."""
    rows: dict[str, list[Any]] = {name: [] for name in (
        "tenant_id", "event_id", "endpoint_id", "order_key", "aggregate_key", "event_seq")}
    for event in events:
        for endpoint in endpoints_by_tenant.get(event.tenant_id, ()):
            # An endpoint hears what happened after it was registered, not the tenant's history.
            if (event.type not in INTERNAL_TYPES and endpoint.wants(event.type)
                    and endpoint.created_at <= event.occurred_at):
                rows["tenant_id"].append(event.tenant_id)
                rows["event_id"].append(event.pk)
                rows["endpoint_id"].append(endpoint.pk)
                rows["order_key"].append(f"webhook:{endpoint.pk}")
                rows["aggregate_key"].append(aggregate_key(event))
                rows["event_seq"].append(event.pk)
    return bulk_insert_columns(Delivery, rows, constants={"kind": Delivery.Kind.WEBHOOK, "next_attempt_at": now})


def _recipients_one_by_one(events: Sequence[OutboxEvent]) -> dict[int, list[Recipient]]:
    # The fallback path: the single resolver, in case the batch resolver is what is broken.
    return {event.pk: recipients_for(event) for event in events}
