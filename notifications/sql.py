"""The relay's two hot statements, written out once instead of built by the ORM on every use
(docs/PERFORMANCE.md, bench 5, measured their gain; everything else is the ORM).

- claim_events: the relay claims and marks a batch of events in one statement (UPDATE ... RETURNING),
  which the ORM cannot express.
- claim_if_ready: a delivery attempt takes its lease, on PostgreSQL, in one statement that checks it may
  go now (pending, due, endpoint active, nothing earlier of the same target and aggregate still to go)
  and returns it with its event, tenant, endpoint and message. Through the ORM that was several
  statements and ~6 ms of CPU to compose and compile them on the 2-core bench machine: more than the
  rest of the attempt together. When the claim does not match, or on another database (SQLite for
  `make run`), the ORM path in deliveries.attempts reads the delivery and leases it conditionally.
- mark_delivered_and_next: a webhook's success and the next in line made due, in one statement on
  PostgreSQL. Through the ORM (a transaction of four or five statements) the bench's worker spent
  ~1.2-1.6 ms more CPU per delivery (3.1 -> 4.4 ms at 200 ms latency; docs/PERFORMANCE.md, bench 5).
  Elsewhere it says so (None) and deliveries.attempts records the success through the ORM.

Parameters go through each field's get_db_prep_save and results through the converters the ORM's
compiler applies (backend, then field), so values read and written are what the ORM would read and
write. Column names are Django's defaults for these models' fields.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection as default_connection
from django.db import models

from .models import Delivery, DeliveryStatus, Message, OutboxEvent, WebhookEndpoint

Converter = Callable[[Any, Any, Any], Any]
PENDING, DELIVERED = DeliveryStatus.PENDING.value, DeliveryStatus.DELIVERED.value
_local = threading.local()  # compiled statements and converters, per thread (as the ORM's connections are)


def _postgres() -> bool:
    return default_connection.vendor == "postgresql"


def _t(model: type[models.Model]) -> str:
    return default_connection.ops.quote_name(model._meta.db_table)


def _prep(model: type[models.Model], name: str, value: Any) -> Any:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field.get_db_prep_save(value, default_connection)


@contextmanager
def _cursor() -> Iterator[Any]:
    """A cursor for the hot statements. On PostgreSQL one that binds parameters on the server (Django's
    cursors inline them into the text), so that psycopg prepares a statement it has run a few times on
    this connection (its prepare_threshold, 5; OPTIONS {"prepare_threshold": None} turns that off, e.g.
    behind a transaction-pooling PgBouncer) and PostgreSQL stops planning it anew: planning the claim
    costs more than running it. Same connection and transaction as the ORM's; errors become Django's."""
    with default_connection.cursor() as django_cursor:
        if not _postgres():
            yield django_cursor
            return
        import psycopg

        with default_connection.wrap_database_errors, psycopg.Cursor(django_cursor.cursor.connection) as cursor:
            yield cursor


def _fetchall(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with _cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


# --- rows to model instances -------------------------------------------------------------------------

def _converters(field: models.Field[Any, Any], alias: str) -> tuple[Any, list[Converter]]:
    """What the ORM's compiler applies to this column: the backend's converters, then the field's."""
    col = field.get_col(alias)
    return col, [*default_connection.ops.get_db_converters(col), *col.get_db_converters(default_connection)]


@dataclass(frozen=True)
class _Part:
    """One model's columns in a select list: where they start and how to read them."""

    model: type[models.Model]
    alias: str
    start: int
    attnames: list[str]
    columns: list[str]
    converters: list[tuple[int, Any, list[Converter]]]  # (position, its Col expression, converters)

    @classmethod
    def of(cls, model: type[models.Model], alias: str, start: int) -> _Part:
        fields = list(model._meta.concrete_fields)
        assert fields[0] is model._meta.pk  # build() looks at the first column for an outer join's miss
        qn = default_connection.ops.quote_name
        return cls(model=model, alias=alias, start=start, attnames=[f.attname for f in fields],
                   columns=[f"{alias}.{qn(str(f.column))}" for f in fields],
                   converters=[(i, col, c) for i, f in enumerate(fields) for col, c in [_converters(f, alias)] if c])

    @property
    def end(self) -> int:
        return self.start + len(self.attnames)

    def build(self, row: Sequence[Any]) -> Any:
        values = list(row[self.start:self.end])
        if values[0] is None:  # no row on this side of an outer join
            return None
        for i, expression, converters in self.converters:
            for convert in converters:
                values[i] = convert(values[i], expression, default_connection)
        return self.model.from_db(default_connection.alias, self.attnames, values)


def _parts(models_by_alias: dict[str, type[models.Model]]) -> dict[str, _Part]:
    parts: dict[str, _Part] = {}
    start = 0
    for alias, model in models_by_alias.items():
        parts[alias] = part = _Part.of(model, alias, start)
        start = part.end
    return parts


# --- the relay's claim ---------------------------------------------------------------------------------

def claim_events(batch: int, now: datetime) -> list[OutboxEvent]:
    """Lock the oldest unrelayed events no other relay holds (SKIP LOCKED) and mark them relayed, in one
    statement; oldest first. The mark is part of the caller's transaction: it stands only if the fan-out
    commits with it, and other transactions see the events unrelayed until then."""
    if not hasattr(_local, "events"):
        part = _Part.of(OutboxEvent, "e", 0)
        # SQLite (make run) has no row locks to skip: it runs one writer at a time anyway.
        skip_locked = " FOR UPDATE SKIP LOCKED" if default_connection.features.has_select_for_update_skip_locked else ""
        table = _t(OutboxEvent)
        returning = ", ".join(c.split(".", 1)[1] for c in part.columns)  # unqualified: SQLite wants them so
        _local.events = (part, (
            f"UPDATE {table} SET relayed_at = %s WHERE id IN ("  # noqa: S608 (a quoted model table)
            f"SELECT id FROM {table} WHERE relayed_at IS NULL ORDER BY id LIMIT %s{skip_locked}) "
            f"RETURNING {returning}"))
    part, statement = _local.events
    rows = _fetchall(statement, [_prep(OutboxEvent, "relayed_at", now), batch])
    events: list[OutboxEvent] = [part.build(row) for row in rows]
    events.sort(key=lambda e: e.pk)  # RETURNING gives no order
    return events


# --- a delivery attempt --------------------------------------------------------------------------------

# An earlier event of the same aggregate not yet relayed (its deliveries may not exist yet).
_EARLIER_UNRELAYED = ("EXISTS (SELECT 1 FROM {outbox} o WHERE o.aggregate_type = e.aggregate_type "
                      "AND o.aggregate_id = e.aggregate_id AND o.id < e.id AND o.relayed_at IS NULL)")


@dataclass(frozen=True)
class _AttemptStatements:
    parts: dict[str, _Part]
    claim: str  # lease it if it may go now, and return it with its relations
    succeed: str  # mark delivered, find (and make due) the next in line
    claim_nondurable: str  # the same two, committed without waiting for the WAL flush
    succeed_nondurable: str


def _statements() -> _AttemptStatements:
    cached: _AttemptStatements | None = getattr(_local, "attempt", None)
    if cached is not None:
        return cached
    tenant = OutboxEvent._meta.get_field("tenant").related_model
    assert tenant is not None and not isinstance(tenant, str)
    parts = _parts({"d": Delivery, "e": OutboxEvent, "t": tenant, "w": WebhookEndpoint, "m": Message})
    columns = ", ".join(c for part in parts.values() for c in part.columns)
    # The statement is a template of quoted model tables and model columns; values are parameters.
    names = {"delivery": _t(Delivery), "outbox": _t(OutboxEvent), "tenant": _t(tenant),
             "endpoint": _t(WebhookEndpoint), "message": _t(Message), "columns": columns}
    names["earlier_unrelayed"] = _EARLIER_UNRELAYED.format(**names)
    names["joins"] = ("LEFT JOIN {outbox} e ON e.id = d.event_id LEFT JOIN {tenant} t ON t.id = e.tenant_id "
                      "LEFT JOIN {endpoint} w ON w.id = d.endpoint_id "
                      "LEFT JOIN {message} m ON m.id = d.message_id").format(**names)
    claim = (
        "WITH {bookkeeping}claimed AS (UPDATE {delivery} AS d SET attempts = d.attempts + 1, last_attempt_at = %s, "
        "next_attempt_at = %s WHERE d.id = %s AND d.status = %s AND d.next_attempt_at <= %s{nondurable} "
        "AND (d.endpoint_id IS NULL OR EXISTS (SELECT 1 FROM {endpoint} w WHERE w.id = d.endpoint_id AND w.is_active)) "
        "AND (d.event_seq IS NULL OR d.order_key = '' OR NOT ("
        "EXISTS (SELECT 1 FROM {outbox} e WHERE e.id = d.event_id AND {earlier_unrelayed}) "
        "OR EXISTS (SELECT 1 FROM {delivery} p WHERE p.order_key = d.order_key AND p.aggregate_key = d.aggregate_key "
        "AND p.event_seq < d.event_seq AND p.status = %s))) RETURNING d.*) "
        "SELECT {columns} FROM claimed d {joins}")
    succeed = (
        "WITH {bookkeeping}done AS (UPDATE {delivery} SET status = %s, delivered_at = %s, last_error = '', "
        "last_status_code = %s WHERE id = %s AND status <> %s{nondurable} RETURNING order_key, aggregate_key, event_seq), "
        "next AS (SELECT p.id FROM {delivery} p, done WHERE done.event_seq IS NOT NULL AND done.order_key <> '' "
        "AND p.order_key = done.order_key AND p.aggregate_key = done.aggregate_key AND p.event_seq > done.event_seq "
        "AND p.status = %s ORDER BY p.event_seq, p.id LIMIT 1), "
        # It was only waiting for this one (never tried, so no backoff of its own to respect).
        "bumped AS (UPDATE {delivery} SET next_attempt_at = %s WHERE id IN (SELECT id FROM next) AND attempts = 0 "
        "AND next_attempt_at > %s) "
        "SELECT (SELECT count(*) FROM done), (SELECT id FROM next)")
    durable = {**names, "bookkeeping": "", "nondurable": ""}
    # The same statements committing without waiting for their WAL flush (see claim_if_ready): the setting
    # is made by the statement itself, for its own transaction only.
    nondurable = {**names, "bookkeeping": "bookkeeping AS (SELECT set_config('synchronous_commit', 'off', true) AS v), ",
                  "nondurable": " AND (SELECT v FROM bookkeeping) IS NOT NULL"}
    cached = _AttemptStatements(
        parts=parts, claim=claim.format(**durable), succeed=succeed.format(**durable),
        claim_nondurable=claim.format(**nondurable), succeed_nondurable=succeed.format(**nondurable))
    _local.attempt = cached
    return cached


def _delivery_from(row: Sequence[Any], parts: dict[str, _Part]) -> Delivery:
    delivery: Delivery = parts["d"].build(row)
    event = parts["e"].build(row)
    if event is not None:
        event.tenant = parts["t"].build(row)
    # Assigning through the relations caches them (None included): no lazy query later.
    delivery.event = event
    delivery.endpoint = parts["w"].build(row)
    delivery.message = parts["m"].build(row)
    return delivery


def claim_if_ready(delivery_id: int, now: datetime, lease_until: datetime) -> Delivery | None:
    """PostgreSQL: count an attempt and take the lease if the delivery may go now (pending, due, its
    endpoint active, nothing earlier of its target and aggregate still to go), in one statement whose
    checks read one snapshot; return it with its relations. None when it may not, or elsewhere than
    PostgreSQL: then the ORM path of deliveries.attempts says why.

    Outside a transaction this and mark_delivered_and_next commit with synchronous_commit off: they
    do not wait for the WAL to reach the disk (two flushes per attempt were most of its time on the
    bench machine). A PostgreSQL crash may then lose the last fraction of a second of them, which
    reverts those deliveries to due: they are sent again, as after a worker crash. At least once and
    the order (checked against the database at every claim) hold; receivers de-duplicate by webhook-id.
    """
    if not _postgres():
        return None
    s = _statements()
    at = _prep(Delivery, "next_attempt_at", now)
    statement = s.claim if default_connection.in_atomic_block else s.claim_nondurable
    rows = _fetchall(statement, [at, _prep(Delivery, "next_attempt_at", lease_until), delivery_id, PENDING, at,
                                 PENDING])
    return _delivery_from(rows[0], s.parts) if rows else None


def mark_delivered_and_next(delivery: Delivery, now: datetime, status_code: int | None) -> tuple[bool, list[int]] | None:
    """PostgreSQL: record a webhook's success unless one was recorded already, and make the next pending
    delivery of its target and aggregate due; one statement (both or neither), committed as claim_if_ready's.
    Returns (marked, [the next one's id]); None elsewhere than PostgreSQL."""
    if not _postgres():
        return None
    at = _prep(Delivery, "next_attempt_at", now)
    s = _statements()
    statement = s.succeed if default_connection.in_atomic_block else s.succeed_nondurable
    ((marked, successor),) = _fetchall(statement, [
        DELIVERED, _prep(Delivery, "delivered_at", now), status_code, delivery.pk, DELIVERED, PENDING, at, at])
    return bool(marked), ([successor] if marked and successor is not None else [])
