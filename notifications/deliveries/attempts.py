"""One delivery attempt, and the loops that make them (a kicked slice, the deliver_due sweep).

Guarantees (docs/WEBHOOKS.md):
- A delivery is attempted at least once: an attempt takes a lease (counts the attempt and moves
  next_attempt_at past the send's timeout, by a conditional update only one worker can win) before
  the network call, so a worker killed mid-send leaves it due again. Receivers de-duplicate by event
  id (the webhook-id header).
- Per aggregate (escalation) and target, deliveries go out in event order: a delivery waits while
  an earlier one of the same target and aggregate is pending or its event is not yet relayed.
  A dead letter no longer holds the line (the operator replays it).
- Each target has a circuit breaker: while it is open its deliveries wait, uncounted.
- A permanent failure (SendFailed.permanent: a push subscription that is gone) is dead-lettered at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pybreaker
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from trustguard.logging import mask_pii

from .. import channels as channel_senders
from .. import sql
from ..breakers import CacheCircuitStorage, breaker_for, breaker_open_until
from ..models import Delivery, DeliveryStatus, Message, OutboxEvent
from ..providers import provider_mark_success
from ..push.sender import push_breaker_target, push_deliver
from .queue import kick_deliveries
from .webhooks import endpoint_signing_secrets

logger = logging.getLogger(__name__)


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter after `attempts` failed tries: uniform in [cap/2, cap]."""
    cap: float = min(settings.DELIVERY_BACKOFF_MAX_SECONDS, settings.DELIVERY_BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return cap / 2 + random.uniform(0, cap / 2)


def breaker_target(delivery: Delivery) -> str:
    """One breaker per external target: each webhook endpoint, the email backend, the SMS provider, each push
    service."""
    if delivery.kind == Delivery.Kind.WEBHOOK:
        return f"webhook:{delivery.endpoint_id}"
    if delivery.kind == Delivery.Kind.PUSH:
        return push_breaker_target(delivery.message.to_address if delivery.message is not None else "")
    if delivery.kind == Delivery.Kind.EMAIL:
        return "email:" + settings.EMAIL_BACKEND.rsplit(".", 2)[-2]
    return f"sms:{settings.SMS_PROVIDER}"


def delivery_attempt(*, delivery_id: int) -> str:
    """Try one due delivery once; return what happened (delivered, retry, dead, waiting, ...).

    1. Claim it: check it is still due, in order and its target's breaker closed, count the attempt and
       take a lease (a conditional update: of two workers claiming one delivery, one wins).
    2. Send, outside any transaction, through the target's circuit breaker.
    3. Record success, or schedule a retry with backoff, or dead-letter it after the last attempt.
    """
    claimed = _delivery_claim(delivery_id)
    if isinstance(claimed, str):
        return claimed
    delivery, breaker_storage = claimed
    target = breaker_target(delivery)
    try:
        result = breaker_for(target, breaker_storage).call(_send, delivery)
    except pybreaker.CircuitBreakerError:
        # Another worker opened the breaker between our check and the call: not an attempt.
        _delivery_release(delivery, breaker_open_until(target))
        return "circuit-open"
    except Exception as exc:
        return _delivery_failed(delivery, exc)
    _delivery_succeeded(delivery, result)
    return "delivered"


def _delivery_claim(delivery_id: int) -> tuple[Delivery, CacheCircuitStorage] | str:
    """The delivery with what its attempt needs, leased to this worker (attempt counted); or why not.

    The common case is one statement (PostgreSQL): lease it if it may go now. Otherwise one statement
    reads it with the order check (one snapshot) and says why not; if it turns out it may go after all,
    a conditional update takes the lease unless another worker changed the row since. No lock is held
    in between: of two workers claiming one delivery, one wins the update.
    """
    now = timezone.now()
    lease = now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    delivery = sql.claim_if_ready(delivery_id, now, lease)
    if delivery is None:
        delivery = _read_for_attempt(delivery_id)
        if delivery is None:
            return "busy-or-missing"
        if delivery.status != DeliveryStatus.PENDING:
            return f"already-{delivery.status}"
        if delivery.next_attempt_at > now:
            return "not-due"
        if delivery.endpoint is not None and not delivery.endpoint.is_active:
            return _dead_letter_for_deleted_endpoint(delivery, now)
        wait_until = _waits_for_earlier(delivery, now)
        if wait_until is not None:
            # Not before the earlier one may go; its completion kicks this one at once anyway.
            # (Without this, a long line behind one failing delivery would fill every sweep.)
            _update_if_unchanged(delivery, now, next_attempt_at=wait_until, count_attempt=False)
            return "waiting-for-earlier-event"
        if not _update_if_unchanged(delivery, now, next_attempt_at=lease, count_attempt=True):
            return "busy-or-missing"  # another worker claimed it first
        delivery.attempts, delivery.last_attempt_at, delivery.next_attempt_at = delivery.attempts + 1, now, lease
    target = breaker_target(delivery)
    breaker_storage = CacheCircuitStorage(target)
    until = breaker_open_until(target, breaker_storage)
    if until is not None:
        # Skip an endpoint that keeps failing until its breaker may try again: give the attempt back.
        _delivery_release(delivery, until)
        return "circuit-open"
    return delivery, breaker_storage


def _read_for_attempt(delivery_id: int) -> Delivery | None:
    """The delivery with its event (and the event's tenant), endpoint and message, in one statement; with
    the order check on the same snapshot, as `earlier_unrelayed` (bool) and `earliest_pending` (datetime
    or None)."""
    earlier_unrelayed = OutboxEvent.objects.filter(
        aggregate_type=OuterRef("event__aggregate_type"), aggregate_id=OuterRef("event__aggregate_id"),
        id__lt=OuterRef("event_id"), relayed_at__isnull=True)
    earliest_pending = (Delivery.objects.filter(
        order_key=OuterRef("order_key"), aggregate_key=OuterRef("aggregate_key"), event_seq__lt=OuterRef("event_seq"),
        status=DeliveryStatus.PENDING).order_by("next_attempt_at").values("next_attempt_at")[:1])
    return (Delivery.objects.select_related("event__tenant", "endpoint", "message")
            .annotate(earlier_unrelayed=Exists(earlier_unrelayed), earliest_pending=Subquery(earliest_pending))
            .filter(pk=delivery_id).first())


def _update_if_unchanged(delivery: Delivery, now: datetime, *, next_attempt_at: datetime, count_attempt: bool) -> bool:
    """Move a pending, due delivery's next try (and count an attempt): only if no other worker changed
    it since it was read (same attempt count, still pending and due). True when this call did it."""
    return Delivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts, next_attempt_at__lte=now,
    ).update(attempts=delivery.attempts + (1 if count_attempt else 0),
             last_attempt_at=now if count_attempt else delivery.last_attempt_at, next_attempt_at=next_attempt_at) == 1


def _dead_letter_for_deleted_endpoint(delivery: Delivery, now: datetime) -> str:
    with transaction.atomic():
        row = (Delivery.objects.select_for_update(skip_locked=True, of=("self",)).select_related("message")
               .filter(pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts).first())
        if row is None:
            return "busy-or-missing"
        _dead_letter(row, "the webhook endpoint was deleted", now)
        row.save()
    return "dead"


def _waits_for_earlier(delivery: Delivery, now: datetime) -> datetime | None:
    """When an earlier delivery of the same target and aggregate is still to go: when to look again.

    Reads the claim's annotations. Both checks ran in the claim's one statement, so on one snapshot: an
    earlier event whose relay commits meanwhile shows up either as unrelayed or as its pending
    deliveries, never as neither.
    """
    if delivery.event_seq is None or not delivery.order_key:
        return None
    if getattr(delivery, "earlier_unrelayed", False):
        return now + timedelta(seconds=5)
    earliest: datetime | None = getattr(delivery, "earliest_pending", None)
    if earliest is not None:
        return max(earliest, now + timedelta(seconds=1))
    return None


def _send(delivery: Delivery) -> channel_senders.SendResult:
    if delivery.kind == Delivery.Kind.WEBHOOK:
        endpoint, event = delivery.endpoint, delivery.event
        assert endpoint is not None and event is not None
        return channel_senders.webhook_post(url=endpoint.url, event_id=str(event.event_id),
                                            envelope=event.envelope(), secrets=endpoint_signing_secrets(endpoint),
                                            at=timezone.now())
    message = delivery.message
    assert message is not None
    if message.sensitive and not message.body:
        raise channel_senders.SendFailed("the sensitive body was already discarded")
    if not message.of_use_at(timezone.now()):
        raise channel_senders.SendFailed("it expired before it could be sent")
    if delivery.kind == Delivery.Kind.PUSH:
        return push_deliver(message)
    if delivery.kind == Delivery.Kind.EMAIL:
        return channel_senders.email_send(to=message.to_address, subject=message.subject, body=message.readable_body(),
                                          html=message.body_html)
    return channel_senders.sms_provider().send(to=message.to_address, body=message.readable_body())


def _delivery_release(delivery: Delivery, until: datetime | None) -> None:
    Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts).update(
        attempts=delivery.attempts - 1, next_attempt_at=until or timezone.now())


def _dead_letter(delivery: Delivery, error: str, now: datetime) -> None:
    delivery.status, delivery.dead_at, delivery.last_error = DeliveryStatus.DEAD, now, error[:2000]
    message = delivery.message
    if message is not None and message.sensitive:
        Message.objects.filter(pk=message.pk).update(body="")
    successors = _next_in_line(delivery)
    transaction.on_commit(lambda: kick_deliveries(successors))


def _delivery_failed(delivery: Delivery, exc: Exception) -> str:
    now = timezone.now()
    status_code = getattr(exc, "status_code", None)
    error = mask_pii(f"{type(exc).__name__}: {exc}")
    if not isinstance(exc, channel_senders.SendFailed | OSError):
        logger.error("delivery %s failed unexpectedly: %s", delivery.pk, error, exc_info=True)
    with transaction.atomic():
        row = Delivery.objects.select_for_update().get(pk=delivery.pk)
        if row.status != DeliveryStatus.PENDING or row.attempts != delivery.attempts:
            return "stale"  # a newer attempt owns the row now
        row.last_status_code = status_code
        retry_at = now + timedelta(seconds=backoff_seconds(row.attempts))
        too_late = row.message is not None and not row.message.of_use_at(retry_at)
        permanent = getattr(exc, "permanent", False)
        if row.attempts >= settings.DELIVERY_MAX_ATTEMPTS or too_late or permanent:
            _dead_letter(row, error, now)
            outcome = "dead"
        else:
            row.last_error = error[:2000]
            row.next_attempt_at = retry_at
            outcome = "retry"
        row.save()
    logger.info("delivery %s attempt %s failed (%s): %s", delivery.pk, delivery.attempts, outcome, error)
    return outcome


def _delivery_succeeded(delivery: Delivery, result: channel_senders.SendResult) -> None:
    now = timezone.now()
    if not delivery.message_id:
        # A webhook: the mark and the next in line together (one statement on PostgreSQL: sql.py says why).
        done = sql.mark_delivered_and_next(delivery, now, result.status_code)
        if done is None:  # not PostgreSQL
            with transaction.atomic():
                marked = _mark_delivered(delivery, now, result.status_code)
                done = marked, (_next_in_line(delivery) if marked else [])
        marked, successors = done
        if marked and successors:
            kick_deliveries(successors)
        return
    with transaction.atomic():  # a message's delivery and its sent_at (and a spent code's blanking) go together
        if not _mark_delivered(delivery, now, result.status_code):
            return  # another attempt (after a lost lease) recorded it already
        updates: dict[str, Any] = {"sent_at": now, "provider": result.provider[:32],
                                   "provider_message_id": result.provider_message_id[:200],
                                   "cost": result.cost, "cost_currency": result.cost_currency}
        if delivery.message is not None and delivery.message.sensitive:
            updates["body"] = ""  # the code has done its job; do not keep it
        Message.objects.filter(pk=delivery.message_id).update(**updates)
        successors = _next_in_line(delivery)
        transaction.on_commit(lambda: kick_deliveries(successors))
    provider_mark_success(delivery.kind, now)  # provider health: the channel's last successful delivery


def _mark_delivered(delivery: Delivery, now: datetime, status_code: int | None) -> bool:
    """Record a success unless one was recorded already (an earlier attempt whose lease ran out)."""
    return Delivery.objects.filter(pk=delivery.pk).exclude(status=DeliveryStatus.DELIVERED).update(
        status=DeliveryStatus.DELIVERED, delivered_at=now, last_error="", last_status_code=status_code) == 1


def _next_in_line(delivery: Delivery) -> list[int]:
    """The next pending delivery of the same target and aggregate, now free to go (made due now)."""
    if delivery.event_seq is None or not delivery.order_key:
        return []
    ids = list(Delivery.objects.filter(
        order_key=delivery.order_key, aggregate_key=delivery.aggregate_key, event_seq__gt=delivery.event_seq,
        status=DeliveryStatus.PENDING).order_by("event_seq", "id").values_list("id", flat=True)[:1])
    if ids:
        # It was only waiting for this one (never tried, so no backoff of its own to respect).
        now = timezone.now()
        Delivery.objects.filter(pk=ids[0], attempts=0, next_attempt_at__gt=now).update(next_attempt_at=now)
    return ids


def deliveries_attempt(*, delivery_ids: Sequence[int], time_budget_seconds: float = 60.0) -> dict[str, int]:
    """delivery_attempt for each id in turn (a kicked slice); what the time budget leaves is kicked again
    (slow receivers: the task stays well within its time limit)."""
    started = time.monotonic()
    outcomes: dict[str, int] = {}
    for n, delivery_id in enumerate(delivery_ids):
        if n and time.monotonic() - started > time_budget_seconds:
            kick_deliveries(delivery_ids[n:])
            break
        outcome = delivery_attempt(delivery_id=delivery_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def deliveries_deliver_due(*, limit: int = 200, time_budget_seconds: float = 60.0) -> dict[str, int]:
    """Attempt due deliveries, oldest event first, within a time budget; count the outcomes."""
    started = timezone.now()
    ids = list(Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=started)
               .order_by("event_seq", "id").values_list("id", flat=True)[:limit])
    outcomes: dict[str, int] = {}
    for delivery_id in ids:
        if (timezone.now() - started).total_seconds() > time_budget_seconds:
            break
        outcome = delivery_attempt(delivery_id=delivery_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
