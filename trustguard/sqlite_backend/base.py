"""Django's SQLite backend, except `flush`: it empties the guarded tables past their append-only triggers.

On PostgreSQL `flush` (and so every transactional test) empties tables with TRUNCATE, which row triggers
do not see. On SQLite it is DELETE, which the append-only triggers (trustguard.db_protections) refuse.
So here `flush` drops the emptied tables' triggers, deletes, and installs them again, in flush's one
transaction (SQLite's DDL is transactional): the same power `flush` has on PostgreSQL, and no more.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from django.db.backends.sqlite3 import base, operations

from trustguard.db_protections import expected_triggers


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style: Any, tables: Any, *, reset_sequences: bool = False,
                  allow_cascade: bool = False) -> list[str]:
        statements = super().sql_flush(style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        if not statements:
            return statements
        emptied = set(tables)
        if allow_cascade:  # the same tables as Django's sql_flush
            emptied = set(chain.from_iterable(self._references_graph(t) for t in tables))  # type: ignore[attr-defined]  # Django's private helper
        guarded = [trigger for trigger in expected_triggers("sqlite") if trigger.table in emptied]
        return ([f"DROP TRIGGER IF EXISTS {self.quote_name(trigger.name)};" for trigger in guarded]
                + statements + [f"{trigger.sql};" for trigger in guarded])


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
