"""Outbox writes, the relay, deliveries (retries, dead letters, replay), messages and webhook endpoints.

Delivery guarantees (see docs/WEBHOOKS.md):
- An event row exists iff the business transaction commits (outbox.emit.event_emit runs inside it).
- The relay claims and marks a batch of unrelayed rows with SKIP LOCKED and fans the batch out to
  its deliveries and messages in the same transaction (set-wise: a few statements per batch, not
  per event), so an event is fanned out exactly once. It has no high-water mark: a row that
  commits late (a lower id committed after higher ones were relayed) is still unrelayed and is
  picked up by the next pass.
- A delivery is attempted at least once: an attempt takes a lease (counts the attempt and moves
  next_attempt_at past the send's timeout, by a conditional update only one worker can win) before
  the network call, so a worker killed mid-send leaves it due again. Receivers de-duplicate by event
  id (the webhook-id header).
- Per aggregate (escalation) and target, deliveries go out in event order: a delivery waits while
  an earlier one of the same target and aggregate is pending or its event is not yet relayed.
  A dead letter no longer holds the line (the operator replays it).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import secrets as _secrets
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import pybreaker
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import ForeignKey, Q
from django.template import Engine, Template
from django.template.exceptions import TemplateDoesNotExist
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import AuditActor, audit_record
from trustguard.broker import broker_publish
from trustguard.bulk import bulk_insert_columns
from trustguard.crypto import SecretUnreadable, decrypt, encrypt
from trustguard.errors import Conflict, NotFound, ValidationFailed
from trustguard.ids import uuid7
from trustguard.jsonutil import to_jsonable
from trustguard.locks import for_update
from trustguard.logging import mask_pii

from . import channels as channel_senders
from . import sql
from .breakers import CacheCircuitStorage, breaker_for, breaker_open_until
from .consumers import consumer_for
from .models import (
    Channel,
    ChannelPreference,
    Delivery,
    DeliveryStatus,
    Message,
    OutboxEvent,
    WebhookEndpoint,
)
from .outbox import catalogue
from .outbox.catalogue import INTERNAL_TYPES, subscribable
from .registry import Recipient, closes_aggregate, recipients_for, recipients_for_many
from .ssrf import TargetRefused, parse_url, resolve_target

logger = logging.getLogger(__name__)
SECRET_PREFIX = "whsec_"
# After a rotation the previous secret keeps signing this long (receivers switch without loss).
ROTATION_GRACE = timedelta(hours=24)
MAX_EVENT_TYPES = 50


# --- outbox ---------------------------------------------------------------------------------------

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
                new_deliveries += _dispatch_messages(events, recipients_for_many, now)
        except Exception:
            logger.warning("notification dispatch failed for a batch of %d events; retrying event by event",
                           len(events), exc_info=True)
            for event in events:
                try:
                    with transaction.atomic():
                        new_deliveries += _dispatch_messages([event], _recipients_one_by_one, now)
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
                _inbox_items_done(events, now)
        except Exception:
            # Never hold the queue for this: the items just keep saying what they said.
            logger.exception("marking inbox items done failed for a batch of %d events", len(events))
        transaction.on_commit(lambda: kick_deliveries(new_deliveries))
    return len(events)


def _inbox_items_done(events: Sequence[OutboxEvent], now: datetime) -> int:
    """Mark done, for everyone, the inbox items that asked for action about an aggregate these events close
    (a decided, cancelled or expired case no longer "needs your decision"). After the batch's own messages:
    an item written in the same batch, before the closing event, is covered too."""
    closing = [e for e in events if closes_aggregate(e)]
    if not closing:
        return 0
    aggregates: dict[str, set[str]] = {}
    for event in closing:
        aggregates.setdefault(event.aggregate_type, set()).add(event.aggregate_id)
    about = Q()
    for aggregate_type, ids in aggregates.items():
        about |= Q(event__aggregate_type=aggregate_type, event__aggregate_id__in=ids)
    # Through the events' aggregate (outbox_aggregate_idx), then the messages of those events (their FK index).
    return (Message.objects.filter(about, tenant_id__in={e.tenant_id for e in closing}, channel=Channel.IN_APP,
                                   done_at__isnull=True)
            .filter(data__has_key="action").update(done_at=now))


def _attach_tenants(events: Sequence[OutboxEvent], tenant_ids: set[int]) -> None:
    """The envelope names the tenant: one query for the batch (not one per event, nor one object per row
    as select_related would build)."""
    field = OutboxEvent._meta.get_field("tenant")
    assert isinstance(field, ForeignKey) and not isinstance(field.related_model, str)
    tenants = field.related_model._default_manager.in_bulk(tenant_ids)
    for event in events:
        field.set_cached_value(event, tenants[event.tenant_id])


def _aggregate_key(event: OutboxEvent) -> str:
    return f"{event.aggregate_type}:{event.aggregate_id}"[:140]


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
                rows["aggregate_key"].append(_aggregate_key(event))
                rows["event_seq"].append(event.pk)
    return bulk_insert_columns(Delivery, rows, constants={"kind": Delivery.Kind.WEBHOOK, "next_attempt_at": now})


def _recipients_one_by_one(events: Sequence[OutboxEvent]) -> dict[int, list[Recipient]]:
    # The fallback path: the single resolver, in case the batch resolver is what is broken.
    return {event.pk: recipients_for(event) for event in events}


@dataclass
class _People:
    """The active users among a batch's recipients and the channels each turned off (two queries)."""

    users: dict[int, Any]
    disabled: dict[int, set[str]]

    @classmethod
    def load(cls, recipients: Iterable[Recipient]) -> _People:
        user_ids = {r.user_id for r in recipients if r.user_id is not None}
        if not user_ids:
            return cls({}, {})
        users = {u.pk: u for u in get_user_model().objects.filter(pk__in=user_ids, is_active=True)}
        disabled: dict[int, set[str]] = {}
        for user_id, channel in ChannelPreference.objects.filter(user_id__in=list(users), enabled=False).values_list(
                "user_id", "channel"):
            disabled.setdefault(user_id, set()).add(channel)
        return cls(users, disabled)


_MESSAGE_COLUMNS = ("id", "tenant_id", "channel", "purpose", "audience", "event_id", "user_id", "to_address",
                    "subject", "body", "body_html", "data", "sent_at", "provider")
_DELIVERY_COLUMNS = ("tenant_id", "kind", "message_id", "event_id", "order_key", "aggregate_key", "event_seq")


def _dispatch_messages(events: Sequence[OutboxEvent],
                       resolve: Callable[[Sequence[OutboxEvent]], dict[int, list[Recipient]]],
                       now: datetime) -> list[int]:
    """Messages (one per person, channel and event) and their deliveries for `events`, inserted in bulk;
    the new deliveries' ids."""
    recipients = resolve(events)
    people = _People.load(r for found in recipients.values() for r in found)
    # Recipients that share a context (e.g. every member of the assigned role) get the same text:
    # render it once per event, channel and audience.
    rendered: dict[tuple[int, str, str, int], Rendered] = {}
    messages: dict[str, list[Any]] = {name: [] for name in _MESSAGE_COLUMNS}
    deliveries: dict[str, list[Any]] = {name: [] for name in _DELIVERY_COLUMNS}
    for event in events:
        envelope: dict[str, object] | None = None
        seen: set[tuple[str, str]] = set()
        for recipient in recipients.get(event.pk, ()):
            for channel, address in _addresses(recipient, people):
                if (channel, address.lower()) in seen:
                    continue  # one person, one message per channel, even if reached by two routes
                seen.add((channel, address.lower()))
                key = (event.pk, channel, recipient.audience, id(recipient.context))
                if key not in rendered:
                    envelope = envelope or event.envelope()
                    context = {**recipient.context, "event": envelope, "audience": recipient.audience}
                    rendered[key] = render_message(channel=channel, audience=recipient.audience,
                                                   event_type=event.type, context=context)
                subject, body, html = rendered[key]
                in_app = channel == Channel.IN_APP
                message_id = uuid7()
                for name, value in zip(_MESSAGE_COLUMNS, (
                        message_id, event.tenant_id, channel, event.type, recipient.audience, event.pk,
                        recipient.user_id, "" if in_app else address, subject, body, html,
                        to_jsonable(dict(recipient.data)), now if in_app else None, "in_app" if in_app else ""),
                        strict=True):
                    messages[name].append(value)
                if not in_app:
                    for name, value in zip(_DELIVERY_COLUMNS, (
                            event.tenant_id, channel, message_id, event.pk, f"{channel}:{_address_key(address)}",
                            _aggregate_key(event), event.pk), strict=True):
                        deliveries[name].append(value)
    bulk_insert_columns(Message, messages)
    return bulk_insert_columns(Delivery, deliveries, constants={"next_attempt_at": now})


def _address_key(address: str) -> str:
    # Ordering key without the address itself (the admin shows keys; addresses are PII).
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:32]


def _addresses(recipient: Recipient, people: _People) -> list[tuple[str, str]]:
    """(channel, address) pairs for a recipient, after their channel preferences."""
    from trustguard.phones import normalize_phone

    user = None
    disabled: set[str] = set()
    if recipient.user_id is not None:
        user = people.users.get(recipient.user_id)
        if user is None:
            return []  # gone or deactivated
        disabled = people.disabled.get(user.pk, set())
    out: list[tuple[str, str]] = []
    for channel in recipient.channels:
        if channel in disabled:
            continue
        if channel == Channel.EMAIL:
            address = recipient.email or (user.email if user else "")
        elif channel == Channel.SMS:
            raw = recipient.phone or (getattr(user, "phone_number", "") if user else "")
            try:
                address = normalize_phone(raw) if raw else ""
            except ValidationFailed:
                logger.warning("skipping SMS to recipient %s: not a valid phone number", recipient.user_id or "-")
                address = ""
        elif channel == Channel.IN_APP:
            address = f"user:{user.pk}" if user else ""
        else:
            address = ""
        if address:
            out.append((channel, address))
    return out


@lru_cache(maxsize=2)
def _template_engine(html: bool = False) -> Engine:
    # Plain-text messages: no HTML autoescaping ("O&#x27;Brien" in an SMS helps nobody). HTML parts escape.
    return Engine(app_dirs=True, autoescape=html)


@lru_cache(maxsize=1024)
def _message_template(channel: str, audience: str, event_type: str, suffix: str) -> Template | None:
    # Which file answers is fixed for the process (as in Django's cached loader): look it up once.
    names = [f"notifications/{channel}/{audience}/{event_type}{suffix}",
             f"notifications/{channel}/{audience}/default{suffix}",
             f"notifications/{channel}/default{suffix}",
             f"notifications/default{suffix}"]
    try:
        return _template_engine(suffix.endswith(".html")).select_template(names)
    except TemplateDoesNotExist:
        return None


class Rendered(NamedTuple):
    """A message as its recipient reads it: subject, text body, and (email) the HTML part."""

    subject: str
    body: str
    html: str = ""


def render_message(*, channel: str, audience: str, event_type: str, context: dict[str, Any]) -> Rendered:
    """From notifications/<channel>/<audience>/<event>.txt (.subject.txt, and .html for email), falling back to
    the audience's, the channel's and the global defaults."""
    body_template = _message_template(channel, audience, event_type, ".txt")
    if body_template is None:
        raise TemplateDoesNotExist(f"notifications/{channel}/{audience}/{event_type}.txt and its defaults")
    body = body_template.render(_context(context)).strip()
    subject_template = _message_template(channel, audience, event_type, ".subject.txt")
    subject = " ".join(subject_template.render(_context(context)).split())[:300] if subject_template else ""
    html = ""
    if channel == Channel.EMAIL:
        html_template = _message_template(channel, audience, event_type, ".html")
        if html_template is not None:
            html = html_template.render(_context({**context, "subject": subject}, html=True)).strip()
    return Rendered(subject, body, html)


def _context(values: dict[str, Any], *, html: bool = False) -> Any:
    from django.template import Context

    # The engine's autoescape applies only to contexts built with it in mind: say it here too.
    return Context(values, autoescape=html)


# --- messages (personal: one-time codes, notices) -------------------------------------------------------

def message_send(*, tenant_id: int, channel: str, subject: str, body: str, purpose: str,
                 to_user_id: int | None = None, to_address: str = "", sensitive: bool = False,
                 valid_until: datetime | None = None) -> Message:
    """Queue one personal message in the current transaction; it is sent after commit, at least once
    (until `valid_until`, when given: a one-time code that arrives after it expired only misleads).

    A sensitive body (a one-time code) is encrypted at rest, never logged, and blanked once delivered.
    """
    from trustguard.phones import normalize_phone

    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("message_send must run inside a transaction (the message exists iff it commits)")
    if channel not in Channel.values:
        raise ValidationFailed(f"unknown channel {channel!r}", errors={"channel": ["Choose email, sms or in_app."]})
    user = None
    if to_user_id is not None:
        user = get_user_model().objects.filter(pk=to_user_id).first()
        if user is None:
            raise NotFound("no such person")
    address = to_address.strip()
    if channel == Channel.EMAIL:
        address = address or (user.email if user else "")
    elif channel == Channel.SMS:
        raw = address or (getattr(user, "phone_number", "") if user else "")
        address = normalize_phone(raw, field="phone") if raw else ""
    elif user is None:
        raise ValidationFailed("an in-app message needs a person", errors={"to_user_id": ["Required for in_app."]})
    if channel != Channel.IN_APP and not address:
        raise ValidationFailed(f"no {channel} address for this person", slug="no-address",
                               errors={"channel": [f"The person has no {channel} address."]})
    now = timezone.now()
    message = Message.objects.create(
        tenant_id=tenant_id, channel=channel, purpose=purpose, user=user,
        to_address="" if channel == Channel.IN_APP else address, subject=subject[:300],
        body=encrypt(body) if sensitive else body, sensitive=sensitive, valid_until=valid_until,
        sent_at=now if channel == Channel.IN_APP else None, provider="in_app" if channel == Channel.IN_APP else "")
    if channel != Channel.IN_APP:
        delivery = Delivery.objects.create(tenant_id=tenant_id, kind=channel, message=message, next_attempt_at=now)
        transaction.on_commit(lambda: kick_deliveries([delivery.pk]))
    return message


def message_body(message: Message) -> str:
    """The body to send or show (decrypted when sensitive; blank once a sensitive one is delivered)."""
    if message.sensitive and message.body:
        return decrypt(message.body)
    return message.body


# --- deliveries -----------------------------------------------------------------------------------------

def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with jitter after `attempts` failed tries: uniform in [cap/2, cap]."""
    cap = min(settings.DELIVERY_BACKOFF_MAX_SECONDS, settings.DELIVERY_BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return cap / 2 + random.uniform(0, cap / 2)


def breaker_target(delivery: Delivery) -> str:
    """One breaker per external target: each webhook endpoint, the email backend, the SMS provider."""
    if delivery.kind == Delivery.Kind.WEBHOOK:
        return f"webhook:{delivery.endpoint_id}"
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
        delivery = sql.read_for_attempt(delivery_id)
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
            sql.update_if_unchanged(delivery, now, next_attempt_at=wait_until, count_attempt=False)
            return "waiting-for-earlier-event"
        if not sql.update_if_unchanged(delivery, now, next_attempt_at=lease, count_attempt=True):
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
    if delivery.kind == Delivery.Kind.EMAIL:
        return channel_senders.email_send(to=message.to_address, subject=message.subject, body=message_body(message),
                                          html=message.body_html)
    return channel_senders.sms_provider().send(to=message.to_address, body=message_body(message))


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
        if row.attempts >= settings.DELIVERY_MAX_ATTEMPTS or too_late:
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
        # A webhook: the mark and the next in line, one statement on PostgreSQL. (Elsewhere two: should the
        # worker die between them, the next one is not kicked now but is due by its own time, at most a
        # lease away, when the deliver_due sweep sends it; the order holds either way, as every claim
        # checks it.)
        marked, successors = sql.mark_delivered_and_next(delivery, now, result.status_code)
        if marked and successors:
            kick_deliveries(successors)
        return
    with transaction.atomic():  # a message's delivery and its sent_at (and a spent code's blanking) go together
        if not sql.mark_delivered(delivery.pk, now, result.status_code):
            return  # another attempt (after a lost lease) recorded it already
        updates: dict[str, Any] = {"sent_at": now, "provider": result.provider[:32],
                                   "provider_message_id": result.provider_message_id[:200],
                                   "cost": result.cost, "cost_currency": result.cost_currency}
        if delivery.message is not None and delivery.message.sensitive:
            updates["body"] = ""  # the code has done its job; do not keep it
        Message.objects.filter(pk=delivery.message_id).update(**updates)
        successors = _next_in_line(delivery)
        transaction.on_commit(lambda: kick_deliveries(successors))


def _next_in_line(delivery: Delivery) -> list[int]:
    """The next pending delivery of the same target and aggregate, now free to go (made due now)."""
    return sql.next_in_line(delivery, timezone.now())


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


@dataclass(frozen=True)
class OperatorActor:
    """An AuditActor for admin users and management commands (notifications cannot import accounts)."""

    actor_type: str
    actor_id: str
    actor_label: str

    @classmethod
    def staff(cls, user: Any) -> OperatorActor:
        return cls(actor_type="user", actor_id=str(user.pk), actor_label=user.get_username())

    @classmethod
    def system(cls, name: str) -> OperatorActor:
        return cls(actor_type="system", actor_id=name, actor_label=f"system:{name}")


def delivery_replay(*, delivery_id: int, actor: AuditActor, tenant_id: int | None = None) -> Delivery:
    """Give a dead letter a fresh set of attempts, now. Audited."""
    with transaction.atomic():
        filters = Q(pk=delivery_id) & (Q(tenant_id=tenant_id) if tenant_id is not None else Q())
        delivery = for_update(Delivery.objects.filter(filters)).first()
        if delivery is None:
            raise NotFound("no such delivery")
        if delivery.status != DeliveryStatus.DEAD:
            raise Conflict(f"only a dead letter can be replayed (this one is {delivery.status})", slug="not-dead")
        message = delivery.message
        if message is not None and message.sensitive and not message.body:
            raise Conflict("a one-time code is not kept after its last attempt; request a new one",
                           slug="sensitive-discarded")
        delivery.status, delivery.attempts, delivery.dead_at = DeliveryStatus.PENDING, 0, None
        delivery.next_attempt_at, delivery.replays = timezone.now(), delivery.replays + 1
        delivery.save()
        audit_record(tenant_id=delivery.tenant_id, action=AuditAction.DELIVERY_REPLAYED, actor=actor, target_type="delivery",
                     target_id=delivery.pk, details={"kind": delivery.kind, "replays": delivery.replays,
                                                     "last_error": delivery.last_error[:500]})
        transaction.on_commit(lambda: kick_deliveries([delivery.pk]))
    return delivery


# --- webhook endpoints ------------------------------------------------------------------------------

def new_webhook_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode()


def endpoint_signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    keys = [decrypt(endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and endpoint.previous_secret_expires_at \
            and endpoint.previous_secret_expires_at > timezone.now():
        try:
            keys.append(decrypt(endpoint.previous_secret_encrypted))
        except SecretUnreadable:
            # Rotated away from a secret stored under a key that is lost (docs/BACKUP.md): the new one signs alone.
            logger.warning("webhook endpoint %s: its previous secret is unreadable; signing with the new one only",
                           endpoint.pk)
    return keys


def _validate_event_types(event_types: Any) -> list[str]:
    """A list of catalogued event types, or prefixes of them with ".*" (notifications.outbox.catalogue)."""
    if event_types is None:
        return []
    if not isinstance(event_types, list) or len(event_types) > MAX_EVENT_TYPES or not all(
            isinstance(t, str) and len(t) <= 64 and subscribable(t) for t in event_types):
        example = f"{catalogue.ESCALATION_APPROVED.type}, {catalogue.ESCALATION_APPROVED.aggregate_type}.*"
        raise ValidationFailed(f"event_types must be a list of event types such as {example.replace(', ', ' or ')}",
                               errors={"event_types": [f"A list of event types (e.g. {example})."]})
    return sorted(set(event_types))


def webhook_endpoint_create(*, tenant_id: int, actor: AuditActor, url: str, event_types: list[str] | None = None,
                            description: str = "") -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; return it with its signing secret (shown this once, stored encrypted)."""
    types = _validate_event_types(event_types)
    try:
        resolve_target(url)
    except TargetRefused as exc:
        raise ValidationFailed(f"url refused: {exc}", slug="webhook-target-refused", errors={"url": [str(exc)]}) from None
    secret = new_webhook_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            tenant_id=tenant_id, url=url, event_types=types, description=description[:200],
            secret_encrypted=encrypt(secret), secret_prefix=secret[:12])
        audit_record(tenant_id=tenant_id, action=AuditAction.WEBHOOK_CREATED, actor=actor, target_type="webhook_endpoint",
                     target_id=endpoint.pk, after={"url": url, "event_types": types})
    return endpoint, secret


def uuid_or_404(value: object, what: str) -> uuid.UUID:
    """Ids are opaque strings to clients; a malformed one is simply not found (never a 500)."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"no such {what}") from None


def _locked_endpoint(tenant_id: int, endpoint_id: object) -> WebhookEndpoint:
    endpoint = for_update(WebhookEndpoint.objects.filter(
        pk=uuid_or_404(endpoint_id, "webhook endpoint"), tenant_id=tenant_id, is_active=True)).first()
    if endpoint is None:
        raise NotFound("no such webhook endpoint")
    return endpoint


def webhook_endpoint_rotate_secret(*, tenant_id: int, actor: AuditActor, endpoint_id: object) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one keeps signing (as a second signature) for ROTATION_GRACE."""
    secret = new_webhook_secret()
    with transaction.atomic():
        endpoint = _locked_endpoint(tenant_id, endpoint_id)
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = timezone.now() + ROTATION_GRACE
        endpoint.secret_encrypted, endpoint.secret_prefix = encrypt(secret), secret[:12]
        # The history row says the secret changed (its prefix shows which one is current); the secret columns
        # themselves are excluded from history, so no copy of either secret lands there, encrypted or not.
        endpoint._change_reason = "signing secret rotated"  # type: ignore[attr-defined]
        endpoint.save()
        audit_record(tenant_id=tenant_id, action=AuditAction.WEBHOOK_SECRET_ROTATED, actor=actor,
                     target_type="webhook_endpoint", target_id=endpoint.pk)
    return endpoint, secret


def webhook_endpoint_delete(*, tenant_id: int, actor: AuditActor, endpoint_id: object) -> None:
    """Deactivate (deliveries keep their history); pending deliveries to it are dead-lettered when due."""
    with transaction.atomic():
        endpoint = _locked_endpoint(tenant_id, endpoint_id)
        endpoint.is_active, endpoint.deleted_at = False, timezone.now()
        endpoint.save(update_fields=["is_active", "deleted_at"])
        audit_record(tenant_id=tenant_id, action=AuditAction.WEBHOOK_DELETED, actor=actor, target_type="webhook_endpoint",
                     target_id=endpoint.pk, before={"url": endpoint.url, "event_types": endpoint.event_types})


def webhook_url_check(url: str) -> None:
    """Syntax only (the full check resolves the host): for serializers."""
    parse_url(url)


# --- inbox and preferences -----------------------------------------------------------------------------

def notification_mark_read(*, user_id: int, tenant_id: int, message_id: object) -> Message:
    with transaction.atomic():
        message = for_update(Message.objects.filter(
            pk=uuid_or_404(message_id, "notification"), user_id=user_id, tenant_id=tenant_id,
            channel=Channel.IN_APP)).first()
        if message is None:
            raise NotFound("no such notification")
        if message.read_at is None:
            message.read_at = timezone.now()
            message.save(update_fields=["read_at"])
    return message


def notifications_mark_all_read(*, user_id: int, tenant_id: int) -> int:
    """Mark every unread inbox item of the person in this tenant read; return how many there were."""
    return Message.objects.filter(user_id=user_id, tenant_id=tenant_id, channel=Channel.IN_APP,
                                  read_at__isnull=True).update(read_at=timezone.now())


def channel_preference_set(*, user_id: int, channel: str, enabled: bool) -> ChannelPreference:
    if channel not in Channel.values:
        raise ValidationFailed(f"unknown channel {channel!r}", errors={"channel": ["Choose email, sms or in_app."]})
    preference, _ = ChannelPreference.objects.update_or_create(user_id=user_id, channel=channel,
                                                               defaults={"enabled": enabled})
    return preference
