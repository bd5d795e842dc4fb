"""A fast bulk UPDATE for batch jobs (the deadline sweeps).

Django's QuerySet.bulk_update builds a CASE WHEN per row and field: fine for tens of rows, but for
a 1,000-row chunk it spends seconds building and parsing the expression. On PostgreSQL this writes
one `UPDATE t SET f = v.f FROM (VALUES ...) AS v WHERE t.pk = v.pk` per batch instead; elsewhere
(SQLite, `make run`) it falls back to bulk_update. Like bulk_update: no save(), no signals, no auto_now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connections, models, router


def bulk_update_rows(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str], *,
                     batch_size: int = 1000) -> None:
    if not objs or not fields:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, list(fields), batch_size=batch_size)
        return
    qn = connection.ops.quote_name
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    targets = [meta.get_field(name) for name in fields]
    columns: list[Any] = [pk, *targets]
    row = "(" + ", ".join(f"%s::{column.db_type(connection)}" for column in columns) + ")"
    assignments = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}" for f in columns[1:])
    pk_type, pk_col = pk.db_type(connection), qn(str(pk.column))
    names = ", ".join(qn(c.column) for c in columns)
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch_size):
            batch = objs[start:start + batch_size]
            params = [column.get_db_prep_save(getattr(obj, column.attname), connection)
                      for obj in batch for column in columns]
            # The extra `= ANY(pks)` makes the planner fetch the rows by primary key: joined to the VALUES
            # list alone it may hash-join against a scan of the whole table on every chunk.
            cursor.execute(
                f"UPDATE {qn(meta.db_table)} AS t SET {assignments} "  # noqa: S608 (identifiers are quoted model metadata)
                f"FROM (VALUES {', '.join([row] * len(batch))}) AS v ({names}) "
                f"WHERE t.{pk_col} = v.{pk_col} AND t.{pk_col} = ANY(%s::{pk_type}[])",
                [*params, [pk.get_db_prep_save(obj.pk, connection) for obj in batch]],
            )


def bulk_insert_rows(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """bulk_create without returning ids, fast on PostgreSQL: COPY ... FROM STDIN instead of a giant INSERT.

    For append-only rows written by batch jobs (outbox, audit). Auto-increment keys are left to the
    database; the objects' pk stays unset. Elsewhere it falls back to bulk_create.
    """
    if not objs:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, batch_size=1000)
        return
    qn = connection.ops.quote_name
    columns = [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
    names = ", ".join(qn(str(f.column)) for f in columns)
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {qn(model._meta.db_table)} ({names}) FROM STDIN") as copy:
        for obj in objs:
            copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in columns])


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
