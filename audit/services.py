"""Writing audit events. Call inside the transaction of the change being audited.

One writer: `audit_record_many` appends a batch (the sweeps), `audit_record` is the same writer with one
event (every other service, in the same transaction as its change). Hashes come from audit.hashing, the one
hasher, which verification uses too.

Events are written *unsealed*: no chain lock, no sequence number, each with its own HMAC; the sealer
(audit.sealing) chains them afterwards, one batch at a time, under the chain head's lock that only it takes. So
requests of one tenant never queue behind each other for the audit trail. settings.AUDIT_SEAL_INLINE brings back
the former design (the head locked in the request and the event chained there), for the bench's comparison and
for a deployment that wants no sealing lag at that price.
"""

from __future__ import annotations

import ipaddress
import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from trustguard import context
from trustguard.bulk import copy_rows
from trustguard.jsonutil import canonical_json, json_datetime

from .actions import AuditAction
from .hashing import compute_hash
from .keys import sealing_key_id, sealing_mac
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


def _clean_text(value: object, limit: int) -> str:
    # PostgreSQL refuses NUL in text; a client-supplied NUL must not turn an audited action into a 500.
    return str(value or "").replace("\x00", "")[:limit]


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # what json.dumps writes for them
_DJANGO_JSON = DjangoJSONEncoder()


def _clean_key(key: object) -> str:
    """A dict key as JSON writes it (json.dumps turns int, float, bool and None keys into text)."""
    if isinstance(key, str):
        text = str.__str__(key)
    elif key is None or isinstance(key, bool):
        text = {None: "null", True: "true", False: "false"}[key]
    elif isinstance(key, int):
        text = int.__repr__(key)
    elif isinstance(key, float):
        text = float.__repr__(key) if math.isfinite(key) else _NON_FINITE[repr(key)]
    else:
        raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
    return text.replace("\x00", "") if "\x00" in text else text


def _clean_json(v: Any) -> Any:
    """A value as the database will give it back, so that its hash verifies later: what storing it as JSON
    (DjangoJSONEncoder) gives, without NULs (jsonb refuses them), NaN or Infinity (text: jsonb has neither), and
    with a float of 1e16 or more as the int jsonb gives back. One walk, no JSON round trip: the sweeps clean
    thousands of states a second; flat dicts of scalars (the usual before/after state) cost no call per value.
    """
    kind = type(v)
    if kind is str:
        return v.replace("\x00", "") if "\x00" in v else v
    if v is None or kind is int or kind is bool:
        return v
    if kind is dict:
        out = {}
        for key, item in v.items():
            if type(key) is not str or "\x00" in key:
                key = _clean_key(key)
            item_kind = type(item)
            if item_kind is str:
                out[key] = item.replace("\x00", "") if "\x00" in item else item
            elif item is None or item_kind is int or item_kind is bool:
                out[key] = item
            elif item_kind is datetime:
                out[key] = json_datetime(item)
            else:
                out[key] = _clean_json(item)
        return out
    if kind is list or kind is tuple:
        return [_clean_json(item) for item in v]
    if kind is datetime:
        return json_datetime(v)
    if kind is uuid.UUID:
        return str(v)
    if kind is float:
        if not math.isfinite(v):
            return _NON_FINITE[repr(v)]
        return int(v) if v.is_integer() and abs(v) >= 1e16 else v
    if isinstance(v, str):  # a TextChoices member, say: JSON keeps its text
        return _clean_json(str.__str__(v))
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):  # an IntegerChoices member: JSON keeps its number
        return int.__int__(v)
    if isinstance(v, float):
        return _clean_json(float.__float__(v))
    if isinstance(v, dict):
        return _clean_json(dict(v))
    if isinstance(v, list | tuple):
        return [_clean_json(item) for item in v]
    return _clean_json(_DJANGO_JSON.default(v))  # dates, times, Decimals, UUIDs, lazy text: their text; else TypeError


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


class AuditEntry(NamedTuple):
    """One event for audit_record_many: the same fields audit_record takes."""

    tenant_id: int | None
    action: AuditAction
    actor: AuditActor
    target_type: str = ""
    target_id: object = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    details: dict[str, Any] | None = None


class RecordedEvent(NamedTuple):
    """An event the writer appended: AuditEvent's fields as stored (`id` last). Unsealed (the usual case): `seq` is
    None, `prev_hash` empty and `hash` the event's own seal; the sealer chains it later.

    What audit_record(_many) return and the audit_events_recorded signal carries: a model instance per row would
    cost more than writing the row.
    """

    chain_key: str
    seq: int | None
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
    id: int = 0

    @property
    def pk(self) -> int:
        return self.id


# The columns an INSERT fills, in RecordedEvent's order (the id is the database's; JSON goes as text).
_FIELDS = RecordedEvent._fields[:-1]

# On PostgreSQL up to this many events go in one INSERT that also moves the chain heads (one round trip); more go
# by COPY, which streams them while the next are hashed. SQLite (in-process) INSERTs in chunks.
_INSERT_UP_TO = 64
_ROWS_PER_INSERT = 500  # SQLite: 19 values a row, well under its 32766 variables a statement


class _ChainWriter:
    """Writes a batch's events of one chain: the parts that are the same for the whole batch taken once.

    `head`: None (the usual case) writes them unsealed; a locked head (AUDIT_SEAL_INLINE) chains them onto it.
    """

    def __init__(self, chain_key: str, head: AuditChainHead | None, *, tenant_id: int | None,
                 ctx: context.RequestContext | None, now: datetime) -> None:
        self.chain_key = chain_key
        self.head = head
        self.tenant_id = tenant_id
        self.now = now
        self.ip = _clean_ip(ctx.ip) if ctx else None
        self.user_agent = _clean_text(ctx.user_agent, 512) if ctx else ""
        self.request_id = _clean_text(ctx.request_id, 128) if ctx else ""
        self.key_id = sealing_key_id()
        self.mac = sealing_mac(self.key_id)

    def add(self, entry: AuditEntry, actor: tuple[str, str, str], id_: int) -> tuple[tuple[Any, ...], list[Any]]:
        """The next event: its fields but the id, and its row (JSON as text). Unsealed with its own seal (seq None,
        no prev_hash), or chained onto the locked head.

        `actor`: (type, id, label), cleaned. `id_`: the row's id when known before the insert (COPY), else 0.
        """
        head = self.head
        seq, prev_hash = (None, "") if head is None else (head.last_seq + 1, head.last_hash)
        before = _clean_json(entry.before) if entry.before is not None else None
        after = _clean_json(entry.after) if entry.after is not None else None
        details = _clean_json(entry.details or {})
        encoded = (canonical_json(before), canonical_json(after), canonical_json(details))
        fields = (self.chain_key, seq, self.tenant_id, _clean_text(entry.action, 64), *actor,
                  _clean_text(entry.target_type, 64), _clean_text(entry.target_id, 64), before, after, details,
                  self.ip, self.user_agent, self.request_id, self.now, self.key_id, prev_hash)
        digest = compute_hash(prev_hash, RecordedEvent(*fields, ""), encoded=encoded, mac=self.mac)
        assert digest is not None  # sealed with the ring's newest key, which the ring holds
        if head is not None:
            head.last_seq, head.last_hash = head.last_seq + 1, digest
        row = [*fields, digest, id_]  # RecordedEvent's order, JSON as text
        row[9] = None if before is None else encoded[0]
        row[10] = None if after is None else encoded[1]
        row[11] = encoded[2]
        return (*fields, digest), row


def _next_ids(connection: BaseDatabaseWrapper, count: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                       [AuditEvent._meta.db_table, count])
        return [row[0] for row in cursor.fetchall()]


def _insert(connection: BaseDatabaseWrapper, rows: Iterator[list[Any]], heads: dict[str, AuditChainHead]) -> list[int]:
    """INSERT the events' rows and move each chain head (AUDIT_SEAL_INLINE; else there are none); returns the new ids.

    On PostgreSQL (a few events: every service but the sweeps) the heads move in the same statement: one round trip.
    """
    meta = AuditEvent._meta
    qn = connection.ops.quote_name
    postgresql = connection.vendor == "postgresql"
    by_name = {field.attname: field for field in meta.concrete_fields}
    fields = [by_name[name] for name in _FIELDS]
    values = [[value if isinstance(field, models.JSONField) else field.get_db_prep_save(value, connection)
               for field, value in zip(fields, row[:-1], strict=True)] for row in rows]  # all hashed from here on
    columns = ", ".join(qn(str(field.column)) for field in fields)
    row_sql = f"({', '.join(['%s'] * len(fields))})"
    ids = []
    with connection.cursor() as cursor:
        for start in range(0, len(values), _ROWS_PER_INSERT):
            chunk = values[start:start + _ROWS_PER_INSERT]
            sql = (f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES {', '.join([row_sql] * len(chunk))} "  # noqa: S608
                   f"RETURNING {qn('id')}")
            params = [value for row in chunk for value in row]
            if postgresql and heads:
                moves = ", ".join(["(%s, %s, %s)"] * len(heads))
                sql = (f"WITH moved AS (UPDATE {qn(AuditChainHead._meta.db_table)} AS h SET last_seq = v.seq, "  # noqa: S608
                       f"last_hash = v.hash FROM (VALUES {moves}) AS v (chain_key, seq, hash) "
                       f"WHERE h.chain_key = v.chain_key) {sql}")
                params = [*(v for head in heads.values() for v in (head.chain_key, head.last_seq, head.last_hash)),
                          *params]
            cursor.execute(sql, params)
            ids += [row[0] for row in cursor.fetchall()]
    if not postgresql:
        _move_heads(heads)
    return ids


def _move_heads(heads: dict[str, AuditChainHead]) -> None:
    for key, head in heads.items():
        AuditChainHead.objects.filter(chain_key=key).update(last_seq=head.last_seq, last_hash=head.last_hash)


def audit_record_many(entries: Sequence[AuditEntry]) -> list[RecordedEvent]:
    """Append events for their tenants' chains (the platform chain for tenant None), in the order given.

    1. Build each event with the request context (ip, user agent, correlation id), every value normalised to what
       the database will give back, and give it its own seal (audit.hashing, under the newest audit key, with no
       seq and no previous hash): an event edited or forged before the sealer chains it is found by that seal.
    2. Insert them, unsealed: no lock is taken, so writers of one tenant never wait for each other here. The
       sealer (audit.sealing) puts them on their chain after the commit, in the order it finds them committed.

    With settings.AUDIT_SEAL_INLINE (the former design) every chain head involved is locked first, in key order,
    until commit, and the events are chained onto it here: writers of one chain queue on that lock.
    """
    return _write(entries, inline=getattr(settings, "AUDIT_SEAL_INLINE", False))


def _write(entries: Sequence[AuditEntry], *, inline: bool) -> list[RecordedEvent]:
    if not entries:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    heads = {key: lock_chain_head(key) for key in sorted({chain_key_for(e.tenant_id) for e in entries})} if inline else {}
    ctx = context.current()
    now = timezone.now()
    writers: dict[int | None, _ChainWriter] = {}
    actors: dict[int, tuple[str, str, str]] = {}
    sealed: list[tuple[Any, ...]] = []

    connection = connections[router.db_for_write(AuditEvent)]
    bulk = connection.vendor == "postgresql" and len(entries) > _INSERT_UP_TO  # a sweep's thousands: COPY
    ids = _next_ids(connection, len(entries)) if bulk else [0] * len(entries)

    def rows() -> Iterator[list[Any]]:
        for entry, id_ in zip(entries, ids, strict=True):
            writer = writers.get(entry.tenant_id)
            if writer is None:
                key = chain_key_for(entry.tenant_id)
                writer = writers[entry.tenant_id] = _ChainWriter(key, heads.get(key), tenant_id=entry.tenant_id,
                                                                 ctx=ctx, now=now)
            actor = actors.get(id(entry.actor))
            if actor is None:  # batches share a handful of actor objects (entries keep them alive meanwhile)
                actor = actors[id(entry.actor)] = (_clean_text(entry.actor.actor_type, 16),
                                                   _clean_text(entry.actor.actor_id, 64),
                                                   _clean_text(entry.actor.actor_label, 255))
            fields, row = writer.add(entry, actor, id_)
            sealed.append(fields)
            yield row

    if bulk:  # hashed as COPY consumes the rows: the database inserts some while the next are hashed
        copy_rows(AuditEvent, RecordedEvent._fields, rows())
        _move_heads(heads)
    else:
        ids = _insert(connection, rows(), heads)
    events = [RecordedEvent._make((*fields, id_)) for fields, id_ in zip(sealed, ids, strict=True)]
    audit_events_recorded.send(sender=AuditEvent, events=events)
    return events


def audit_record(
    *,
    tenant_id: int | None,
    action: AuditAction,
    actor: AuditActor,
    target_type: str = "",
    target_id: object = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> RecordedEvent:
    """Append one event to the tenant's chain (the platform chain when tenant_id is None): audit_record_many of one."""
    return audit_record_many([AuditEntry(tenant_id, action, actor, target_type, target_id, before, after, details)])[0]


def chains_seal_unkeyed(using: str = "default") -> list[str]:
    """Seal every chain whose last event is unkeyed (written before the chain was keyed); returns their keys.

    One keyed `audit.chain_keyed` event each, chained at once onto the locked head (not left to the sealer): its
    seal covers the previous hash, so it pins every unkeyed event before it, which verification then accepts
    (audit.verification). Run after every `migrate` (post_migrate): idempotent, and a no-op once every chain is keyed.
    """
    unkeyed = AuditEvent.objects.using(using).filter(chain_key=OuterRef("chain_key"), seq=OuterRef("last_seq"),
                                                     key_id="")
    keys = list(AuditChainHead.objects.using(using).filter(Exists(unkeyed)).order_by("chain_key")
                .values_list("chain_key", flat=True))
    for key in keys:
        tenant_id = None if key == PLATFORM_CHAIN else int(key.split(":", 1)[1])
        with transaction.atomic(using=using):
            head = lock_chain_head(key)
            _write([AuditEntry(tenant_id, AuditAction.AUDIT_CHAIN_KEYED, SystemActor("migrate"), "audit_chain", key,
                               details={"sealed_through_seq": head.last_seq})], inline=True)
    return keys


def chains_seal_unkeyed_after_migrate(using: str = "default", **kwargs: Any) -> None:
    """post_migrate: seal what older releases wrote (see chains_seal_unkeyed)."""
    chains_seal_unkeyed(using)
