"""Writing audit events. Call inside the transaction of the change being audited.

One writer, `audit_record`; each action family (escalations, accounts, step-up, policies,
retention, verification) calls it from its own service, in the same transaction as its change.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from trustguard import context
from trustguard.bulk import copy_rows
from trustguard.jsonutil import canonical_json, json_datetime

from .actions import AuditAction
from .keys import seal, sealing_key
from .models import AuditChainHead, AuditEvent
from .signals import audit_events_recorded

PLATFORM_CHAIN = "platform"


class AuditActor(Protocol):
    """Whoever acted: a user, an API key or a system job. accounts.Actor satisfies this."""

    @property
    def actor_type(self) -> str: ...
    @property
    def actor_id(self) -> str: ...
    @property
    def actor_label(self) -> str: ...


@dataclass(frozen=True)
class SystemActor:
    """A system job acting outside any tenant (retention, verification): audit's own actor."""

    job: str

    @property
    def actor_type(self) -> str:
        return "system"

    @property
    def actor_id(self) -> str:
        return self.job

    @property
    def actor_label(self) -> str:
        return f"system:{self.job}"


def chain_key_for(tenant_id: int | None) -> str:
    return f"tenant:{tenant_id}" if tenant_id is not None else PLATFORM_CHAIN


def event_payload(event: AuditEvent | RecordedEvent) -> dict[str, Any]:
    """The fields covered by the hash (everything but the hashes themselves and the row id)."""
    created = event.created_at.astimezone(UTC).isoformat()
    return {
        "chain": event.chain_key,
        "seq": event.seq,
        "tenant": event.tenant_id,
        "action": event.action,
        "actor": [event.actor_type, event.actor_id, event.actor_label],
        "target": [event.target_type, event.target_id],
        "before": event.before,
        "after": event.after,
        "details": event.details,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "created_at": created,
        **({"key": event.key_id} if event.key_id else {}),
    }


def compute_hash(prev_hash: str, event: AuditEvent | RecordedEvent) -> str | None:
    """The hash the event must carry: the HMAC under its key (None: the ring lacks that key); unkeyed: SHA-256."""
    message = prev_hash + canonical_json(event_payload(event))
    if not event.key_id:
        return hashlib.sha256(message.encode()).hexdigest()
    return seal(event.key_id, message)


def _clean_text(value: object, limit: int) -> str:
    # PostgreSQL refuses NUL in text; a client-supplied NUL must not turn an audited action into a 500.
    return str(value or "").replace("\x00", "")[:limit]


def _clean_json_slow(value: Any) -> Any:
    """JSON as the database will give it back: the reference for _clean_json (any value DjangoJSONEncoder takes)."""
    value = json.loads(json.dumps(value, cls=DjangoJSONEncoder), parse_constant=str)

    def strip(v: Any) -> Any:
        if isinstance(v, str):
            return v.replace("\x00", "")
        if isinstance(v, float):
            if not math.isfinite(v):
                return str(v)  # jsonb has no NaN or Infinity
            if v.is_integer() and abs(v) >= 1e16:
                return int(v)  # jsonb gives 1e16 back as 10000000000000000, an int: hash what comes back
            return v
        if isinstance(v, list):
            return [strip(x) for x in v]
        if isinstance(v, dict):
            return {k.replace("\x00", ""): strip(x) for k, x in v.items()}
        return v

    return strip(value)


class _NotPlain(Exception):
    """A value _clean_plain leaves to _clean_json_slow."""


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # what json.dumps writes for them


def _clean_plain(v: Any) -> Any:
    """_clean_json_slow in one walk, without the JSON round trip, for the types services pass.

    Leaves anything else (dates, Decimals, non-str keys, ...) to _clean_json_slow by raising _NotPlain.
    Flat dicts of scalars (the usual before/after state) are cleaned without a call per value.
    """
    kind = type(v)
    if kind is str:
        return v.replace("\x00", "") if "\x00" in v else v
    if v is None or kind is int or kind is bool:
        return v
    if kind is dict:
        out = {}
        for key, item in v.items():
            if type(key) is not str:
                raise _NotPlain
            if "\x00" in key:
                key = key.replace("\x00", "")
            item_kind = type(item)
            if item_kind is str:
                out[key] = item.replace("\x00", "") if "\x00" in item else item
            elif item is None or item_kind is int or item_kind is bool:
                out[key] = item
            elif item_kind is datetime:
                out[key] = json_datetime(item)
            else:
                out[key] = _clean_plain(item)
        return out
    if kind is list or kind is tuple:
        return [_clean_plain(item) for item in v]
    if kind is datetime:
        return json_datetime(v)
    if kind is uuid.UUID:
        return str(v)
    if kind is float:
        if not math.isfinite(v):
            return _NON_FINITE[repr(v)]
        return int(v) if v.is_integer() and abs(v) >= 1e16 else v
    if isinstance(v, str):  # a TextChoices member, say: JSON keeps its text
        return _clean_plain(str.__str__(v))
    if isinstance(v, int):  # an IntegerChoices member: JSON keeps its number
        return int.__int__(v)
    raise _NotPlain


def _clean_json(value: Any) -> Any:
    """JSON as the database will give it back (so the hash verifies later), without NULs (jsonb refuses them)."""
    try:
        return _clean_plain(value)
    except _NotPlain:
        return _clean_json_slow(value)


def _clean_ip(value: str | None) -> str | None:
    """The address exactly as GenericIPAddressField stores it, or None when it is not an address."""
    if not value:
        return None
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        return None
    return clean_ipv6_address(str(parsed)) if parsed.version == 6 else str(parsed)


def lock_chain_head(key: str) -> AuditChainHead:
    """Lock the chain head, creating it on first use (ON CONFLICT DO NOTHING: no race, no savepoint)."""
    head = AuditChainHead.objects.select_for_update().filter(chain_key=key).first()
    if head is None:
        AuditChainHead.objects.bulk_create([AuditChainHead(chain_key=key)], ignore_conflicts=True)
        head = AuditChainHead.objects.select_for_update().get(chain_key=key)
    return head


def _new_event(head: AuditChainHead, *, tenant_id: int | None, action: str, actor: AuditActor, target_type: str,
               target_id: object, before: dict[str, Any] | None, after: dict[str, Any] | None,
               details: dict[str, Any] | None, ctx: context.RequestContext | None, now: datetime) -> AuditEvent:
    """The next event on `head`'s chain, hashed, with every value as the database will give it back."""
    event = AuditEvent(
        chain_key=head.chain_key,
        seq=head.last_seq + 1,
        tenant_id=tenant_id,
        action=_clean_text(action, 64),
        actor_type=_clean_text(actor.actor_type, 16),
        actor_id=_clean_text(actor.actor_id, 64),
        actor_label=_clean_text(actor.actor_label, 255),
        target_type=_clean_text(target_type, 64),
        target_id=_clean_text(target_id, 64),
        before=_clean_json(before) if before is not None else None,
        after=_clean_json(after) if after is not None else None,
        details=_clean_json(details or {}),
        ip=_clean_ip(ctx.ip) if ctx else None,
        user_agent=_clean_text(ctx.user_agent, 512) if ctx else "",
        request_id=_clean_text(ctx.request_id, 128) if ctx else "",
        created_at=now,
        key_id=sealing_key()[0],
        prev_hash=head.last_hash,
    )
    digest = compute_hash(head.last_hash, event)
    assert digest is not None  # sealed with the ring's newest key, which the ring holds
    event.hash = digest
    head.last_seq, head.last_hash = event.seq, event.hash
    return event


def audit_record(
    *,
    tenant_id: int | None,
    action: str,
    actor: AuditActor,
    target_type: str = "",
    target_id: object = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the tenant's chain (the platform chain when tenant_id is None).

    1. Lock the chain head (created on first use) so writers of one chain queue here; the lock
       is held until commit, so the next writer sees this event's hash: the chain never forks.
    2. Build the event with the request context (ip, user agent, correlation id), every value
       normalised to what the database will give back, so the hash verifies later.
    3. Seal it onto the previous hash (HMAC under the newest audit key), insert it, move the head.

    Call it as late as possible in the business transaction: the head lock is held until commit.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    key = chain_key_for(tenant_id)
    head = lock_chain_head(key)
    # Taken under the head lock: along a chain, time follows seq (barring a clock step).
    event = _new_event(head, tenant_id=tenant_id, action=action, actor=actor, target_type=target_type,
                       target_id=target_id, before=before, after=after, details=details, ctx=context.current(),
                       now=timezone.now())
    event.save(force_insert=True)
    AuditChainHead.objects.filter(chain_key=key).update(last_seq=event.seq, last_hash=event.hash)
    audit_events_recorded.send(sender=AuditEvent, events=[event])
    return event


class AuditEntry(NamedTuple):
    """One event for audit_record_many: the same fields audit_record takes."""

    tenant_id: int | None
    action: str
    actor: AuditActor
    target_type: str = ""
    target_id: object = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    details: dict[str, Any] | None = None


class RecordedEvent(NamedTuple):
    """An event audit_record_many wrote: AuditEvent's fields as stored, without the row id (COPY returns none).

    What the audit_events_recorded signal carries for a batch: a model instance per row would cost more
    than writing the row.
    """

    chain_key: str
    seq: int
    tenant_id: int | None
    action: str
    actor_type: str
    actor_id: str
    actor_label: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any]
    ip: str | None
    user_agent: str
    request_id: str
    created_at: datetime
    key_id: str
    prev_hash: str
    hash: str


# The columns written, in RecordedEvent's order (before, after and details as JSON text).
_BATCH_FIELDS = RecordedEvent._fields


class _ChainWriter:
    """Seals a batch's events onto one chain (HMAC under the newest audit key), writing each event's JSON once.

    canonical_json(event_payload(event)) is a JSON object with sorted keys; the parts that are the same
    for the whole batch (chain, tenant, time, request context) are encoded once here, and each event's
    before/after/details are encoded once and used both in the hash input and in the stored row.
    """

    def __init__(self, head: AuditChainHead, *, tenant_id: int | None, ctx: context.RequestContext | None,
                 now: datetime) -> None:
        self.head = head
        self.tenant_id = tenant_id
        self.now = now
        self.ip = _clean_ip(ctx.ip) if ctx else None
        self.user_agent = _clean_text(ctx.user_agent, 512) if ctx else ""
        self.request_id = _clean_text(ctx.request_id, 128) if ctx else ""
        self.key_id, self._mac = sealing_key()
        created = now.astimezone(UTC).isoformat()
        self._middle = f',"chain":{canonical_json(head.chain_key)},"created_at":{canonical_json(created)},"details":'
        self._context = (f',"ip":{canonical_json(self.ip)},"key":{canonical_json(self.key_id)},'
                         f'"request_id":{canonical_json(self.request_id)},"seq":')
        self._tail = f',"tenant":{canonical_json(tenant_id)},"user_agent":{canonical_json(self.user_agent)}}}'

    def add(self, entry: AuditEntry, actor: tuple[str, str, str, str]) -> tuple[RecordedEvent, list[Any]]:
        """The next event of the chain, and its row for COPY. `actor` is (type, id, label, its JSON)."""
        head = self.head
        action = _clean_text(entry.action, 64)
        target_type, target_id = _clean_text(entry.target_type, 64), _clean_text(entry.target_id, 64)
        before = _clean_json(entry.before) if entry.before is not None else None
        after = _clean_json(entry.after) if entry.after is not None else None
        details = _clean_json(entry.details or {})
        before_json, after_json, details_json = canonical_json(before), canonical_json(after), canonical_json(details)
        seq = head.last_seq + 1
        payload = (f'{{"action":{canonical_json(action)},"actor":{actor[3]},"after":{after_json},"before":{before_json}'
                   f'{self._middle}{details_json}{self._context}{seq},"target":{canonical_json([target_type, target_id])}'
                   f'{self._tail}')
        mac = self._mac.copy()
        mac.update((head.last_hash + payload).encode())
        digest = mac.hexdigest()
        event = RecordedEvent(head.chain_key, seq, self.tenant_id, action, actor[0], actor[1], actor[2], target_type,
                              target_id, before, after, details, self.ip, self.user_agent, self.request_id, self.now,
                              self.key_id, head.last_hash, digest)
        head.last_seq, head.last_hash = seq, digest
        row = list(event)
        row[9] = None if before is None else before_json
        row[10] = None if after is None else after_json
        row[11] = details_json
        return event, row


def audit_record_many(entries: Sequence[AuditEntry]) -> list[RecordedEvent]:
    """audit_record for a batch (sweeps): the same events and chain, in a few queries.

    1. Lock every chain head involved, in key order (two batch writers never deadlock).
    2. Build and hash each event onto its chain in the order given, every value normalised as audit_record
       does (the hash input is canonical_json(event_payload(event)), as verification recomputes it).
    3. Insert them with COPY and move each head once.

    Same rule as audit_record: call it last in the business transaction.
    """
    if not entries:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record_many must run inside the transaction of the changes it records")
    keys = sorted({chain_key_for(entry.tenant_id) for entry in entries})
    heads = {key: lock_chain_head(key) for key in keys}
    ctx = context.current()
    now = timezone.now()
    writers: dict[int | None, _ChainWriter] = {}
    actors: dict[int, tuple[str, str, str, str]] = {}
    events: list[RecordedEvent] = []

    def rows() -> Iterator[list[Any]]:
        """Built while COPY streams them: the database inserts one part while the next is hashed."""
        for entry in entries:
            writer = writers.get(entry.tenant_id)
            if writer is None:
                writer = writers[entry.tenant_id] = _ChainWriter(heads[chain_key_for(entry.tenant_id)],
                                                                 tenant_id=entry.tenant_id, ctx=ctx, now=now)
            actor = actors.get(id(entry.actor))
            if actor is None:  # batches share a handful of actor objects (entries keep them alive meanwhile)
                who = (_clean_text(entry.actor.actor_type, 16), _clean_text(entry.actor.actor_id, 64),
                       _clean_text(entry.actor.actor_label, 255))
                actor = actors[id(entry.actor)] = (*who, canonical_json(list(who)))
            event, row = writer.add(entry, actor)
            events.append(event)
            yield row

    copy_rows(AuditEvent, _BATCH_FIELDS, rows())
    for key in keys:
        head = heads[key]
        AuditChainHead.objects.filter(chain_key=key).update(last_seq=head.last_seq, last_hash=head.last_hash)
    audit_events_recorded.send(sender=AuditEvent, events=events)
    return events


def chains_seal_unkeyed(using: str = "default") -> list[str]:
    """Seal every chain whose last event is unkeyed (written before the chain was keyed); returns their keys.

    One keyed `audit.chain_keyed` event each: its seal covers the previous hash, so it pins every unkeyed event
    before it, which verification then accepts (audit.verification). Run after every `migrate` (post_migrate):
    idempotent, and a no-op once every chain is keyed.
    """
    unkeyed = AuditEvent.objects.using(using).filter(chain_key=OuterRef("chain_key"), seq=OuterRef("last_seq"),
                                                     key_id="")
    keys = list(AuditChainHead.objects.using(using).filter(Exists(unkeyed)).order_by("chain_key")
                .values_list("chain_key", flat=True))
    for key in keys:
        tenant_id = None if key == PLATFORM_CHAIN else int(key.split(":", 1)[1])
        with transaction.atomic(using=using):
            head = lock_chain_head(key)
            audit_record(tenant_id=tenant_id, action=AuditAction.AUDIT_CHAIN_KEYED, actor=SystemActor("migrate"),
                         target_type="audit_chain", target_id=key, details={"sealed_through_seq": head.last_seq})
    return keys


def chains_seal_unkeyed_after_migrate(using: str = "default", **kwargs: Any) -> None:
    """post_migrate: seal what older releases wrote (see chains_seal_unkeyed)."""
    chains_seal_unkeyed(using)
