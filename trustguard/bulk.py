"""A fast bulk UPDATE for batch jobs (the deadline sweeps).

Django's QuerySet.bulk_update builds a CASE WHEN per row and field: fine for tens of rows, but for
a 1,000-row chunk it spends seconds building and parsing the expression. On PostgreSQL this writes
one `UPDATE t SET f = v.f FROM (VALUES ...) AS v WHERE t.pk = v.pk` per batch instead; elsewhere
(SQLite, `make run`) it falls back to bulk_update. Like bulk_update: no save(), no signals, no auto_now.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    columns = [pk, *targets]
    row = "(" + ", ".join(f"%s::{column.db_type(connection)}" for column in columns) + ")"  # type: ignore[union-attr]
    assignments = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}" for f in targets)  # type: ignore[union-attr]
    pk_type = pk.db_type(connection)
    names = ", ".join(qn(c.column) for c in columns)  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch_size):
            batch = objs[start:start + batch_size]
            params = [column.get_db_prep_save(getattr(obj, column.attname), connection)  # type: ignore[union-attr]
                      for obj in batch for column in columns]
            # The extra `= ANY(pks)` makes the planner fetch the rows by primary key: joined to the VALUES
            # list alone it may hash-join against a scan of the whole table on every chunk.
            cursor.execute(
                f"UPDATE {qn(meta.db_table)} AS t SET {assignments} "  # noqa: S608 (identifiers are quoted model metadata)
                f"FROM (VALUES {', '.join([row] * len(batch))}) AS v ({names}) "
                f"WHERE t.{qn(pk.column)} = v.{qn(pk.column)} AND t.{qn(pk.column)} = ANY(%s::{pk_type}[])",
                [*params, [pk.get_db_prep_save(obj.pk, connection) for obj in batch]],
            )
