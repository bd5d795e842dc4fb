"""Fast bulk writes of plain rows for batch jobs (the deadline sweeps): no model instances, few round trips.

The sweeps change thousands of rows per chunk. Building a model instance per row and preparing every
value through its field (get_db_prep_save) costs more than the database's own work, and so does a
client-side-bound statement with one placeholder per value (psycopg quotes each into the SQL text).
These take rows as tuples of values the driver can send as they are (str, int, bool, datetime with
tzinfo, UUID, None, and JSON already serialised to text), in the model's field order given:

- select_rows: a queryset's rows as plain tuples, timestamps parsed by psycopg's C loader;
- update_rows: one `UPDATE t SET f = v.f FROM unnest(<one binary array per column>) AS v ...` per batch;
- copy_rows: `COPY t (...) FROM STDIN`, the fastest bulk insert PostgreSQL has.

Like bulk_update/bulk_create: no save(), no signals, no auto_now, no defaults: the caller supplies
every value. On any other database (SQLite for `make run`) both fall back to executemany.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from django.db import connections, models, router
from django.db.models import QuerySet
from psycopg.pq import Format

Row = Sequence[Any]


def _columns(model: type[models.Model], fields: Sequence[str]) -> list[models.Field[Any, Any]]:
    return [model._meta.get_field(name) for name in fields]  # type: ignore[misc]  # concrete fields only (no relations' reverse side)


def _prepared(connection: Any, columns: Sequence[models.Field[Any, Any]], rows: Iterable[Row]) -> list[list[Any]]:
    """Values as each field would store them, for the fallback (JSON is given as text already)."""

    def prep(column: models.Field[Any, Any], value: Any) -> Any:
        return value if isinstance(column, models.JSONField) else column.get_db_prep_save(value, connection)

    return [[prep(column, value) for column, value in zip(columns, row, strict=True)] for row in rows]


def select_rows(queryset: QuerySet[Any, Any]) -> list[tuple[Any, ...]]:
    """The rows of a values_list() queryset, for batch jobs: as list(queryset), minus its cost per value.

    On PostgreSQL with the session in UTC (Django's, with USE_TZ) the compiled query runs on a cursor
    whose timestamps are parsed by psycopg's C loader: Django's own loader (which applies the connection's
    time zone) subclasses the pure-Python one and costs ~10 µs per timestamp, more than the rest of a
    sweep's row. Both give datetimes in UTC. No from_db_value runs, so select JSON as text (Cast) and
    list model fields before annotations (the SELECT's own order). Elsewhere it is list(queryset).
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql" or connection.timezone_name != "UTC":
        return list(queryset)
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    with connection.cursor() as cursor:
        oid = psycopg.adapters.types["timestamptz"].oid
        cursor.cursor.adapters.register_loader(oid, psycopg.adapters.get_loader(oid, Format.TEXT))
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows


def update_rows(model: type[models.Model], fields: Sequence[str], rows: Sequence[Row], *,
                batch_size: int = 5000) -> int:
    """UPDATE each row's `fields` by primary key: every row is (pk, value of fields[0], value of fields[1], ...)."""
    if not rows or not fields:
        return 0
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    targets = _columns(model, fields)
    qn = connection.ops.quote_name
    table, pk_col = qn(meta.db_table), qn(str(pk.column))
    if connection.vendor != "postgresql":
        assignments = ", ".join(f"{qn(str(f.column))} = %s" for f in targets)
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {pk_col} = %s",  # noqa: S608 (quoted metadata)
                               [[*row[1:], row[0]] for row in _prepared(connection, [pk, *targets], rows)])
        return len(rows)
    columns = [pk, *targets]
    names = ", ".join(qn(str(c.column)) for c in columns)
    arrays = ", ".join(f"%b::{c.db_type(connection)}[]" for c in columns)
    assignments = ", ".join(f"{qn(str(f.column))} = v.{qn(str(f.column))}" for f in targets)
    # The extra `= ANY(pks)` makes the planner fetch the rows by primary key: joined to the unnest()
    # alone it may hash-join against a scan of the whole table on every chunk.
    sql = (f"UPDATE {table} AS t SET {assignments} FROM unnest({arrays}) AS v ({names}) "  # noqa: S608
           f"WHERE t.{pk_col} = v.{pk_col} AND t.{pk_col} = ANY(%b::{pk.db_type(connection)}[])")
    updated = 0
    connection.ensure_connection()
    # A server-side-bound cursor sends each column as one binary array; Django's (client-side binding)
    # would render every value into the SQL text.
    with psycopg.Cursor(connection.connection) as cursor:
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            values = [list(column) for column in zip(*batch, strict=True)]
            cursor.execute(sql, [*values, values[0]])
            updated += cursor.rowcount
    return updated


def copy_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Row]) -> None:
    """INSERT append-only rows (outbox, audit) in bulk: COPY ... FROM STDIN on PostgreSQL.

    Auto-increment keys are left to the database (leave the primary key out of `fields`).
    """
    connection = connections[router.db_for_write(model)]
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    columns = _columns(model, fields)
    names = ", ".join(qn(str(f.column)) for f in columns)
    if connection.vendor != "postgresql":
        placeholders = ", ".join(["%s"] * len(fields))
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})",  # noqa: S608
                               _prepared(connection, columns, rows))
        return
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def bulk_insert_columns(model: type[models.Model], columns: Mapping[str, Sequence[Any]], *,
                        constants: Mapping[str, Any] | None = None) -> list[Any]:
    """Insert rows given column-wise ({attname: values}); return their primary keys. For batch jobs.

    bulk_create builds a model object per row and prepares every field of every row, which is most
    of the cost of a batch of thousands of small rows. On PostgreSQL this takes the keys of an
    auto-increment primary key from its sequence in one query and writes the rows with COPY. A column
    in `constants` is one value for every row; any other column gets its field default (a callable
    default is called per row; auto_now(_add) fields: now). Like bulk_create: no save(), no signals.
    Elsewhere it falls back to bulk_create.
    """
    from django.utils import timezone

    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        raise ValueError("every column needs one value per row")
    (count,) = lengths
    if not count:
        return []
    columns, constants = dict(columns), dict(constants or {})
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    auto_pk = isinstance(pk, models.AutoField)
    if not auto_pk and pk.attname not in columns:
        raise ValueError("a primary key the database does not generate needs a value per row")
    connection = connections[router.db_for_write(model)]
    now = timezone.now()
    fields = [f for f in meta.concrete_fields if not (f.primary_key and auto_pk)]
    for f in fields:
        if f.attname not in columns and f.attname not in constants:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                constants[f.attname] = now
            elif f.has_default() and callable(f.default):
                columns[f.attname] = [f.get_default() for _ in range(count)]  # e.g. uuid4: one per row
            else:
                constants[f.attname] = f.get_default()
    if connection.vendor != "postgresql":
        objs = [model(**{name: values[i] for name, values in columns.items()}, **constants) for i in range(count)]
        model._default_manager.bulk_create(objs, batch_size=1000)
        return [obj.pk for obj in objs]
    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    varying = [f for f in fields if f.attname in columns]
    fixed = [f for f in fields if f.attname not in columns]
    prepared = [[f.get_db_prep_save(v, connection) for v in columns[f.attname]] for f in varying]
    tail = [f.get_db_prep_save(constants[f.attname], connection) for f in fixed]
    names = [qn(str(f.column)) for f in (*varying, *fixed)]
    with connection.cursor() as cursor:
        if auto_pk:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                           [meta.db_table, pk.column, count])
            keys = [row[0] for row in cursor.fetchall()]
            prepared.insert(0, keys)
            names.insert(0, qn(str(pk.column)))
        else:
            keys = list(columns[pk.attname])
        with cursor.cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
            for row in zip(*prepared, strict=True):
                copy.write_row((*row, *tail))
    return keys
