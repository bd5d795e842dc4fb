"""Database-level protections (append-only triggers): which each engine must hold, checked and kept.

Apps declare, in AppConfig.ready(), the triggers that guard their tables, per engine (`expect_triggers`):

- PostgreSQL: pgtrigger installs them from the models' Meta.triggers through migrations (`pgtriggers`).
- SQLite: the app gives each CREATE TRIGGER statement (`sqlite_refusal`). Migrations install them, but
  SQLite loses a table's triggers whenever Django rebuilds the table (an AlterField, a new primary key
  type...), so after every `migrate` the missing ones are installed again (`sqlite_triggers_install`,
  connected to post_migrate by TrustguardConfig), idempotently.

A system check (trustguard/checks.py) fails when one is missing or disabled on the engine in use, so
`manage.py check`, runserver and the web process's start-up (trustguard/wsgi.py) refuse to run without them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True)
class ExpectedTrigger:
    table: str
    name: str  # as the database names it (pg_trigger.tgname, sqlite_master.name)
    refuses: str  # what it refuses, for people reading the check's message
    sql: str = ""  # SQLite: the CREATE TRIGGER IF NOT EXISTS statement that installs it


_EXPECTED: dict[str, dict[str, ExpectedTrigger]] = defaultdict(dict)


def expect_triggers(vendor: str, *triggers: ExpectedTrigger) -> None:
    """Declare triggers that must exist on `vendor` ("postgresql", "sqlite"); a later declaration of a name wins."""
    for trigger in triggers:
        if vendor == "sqlite" and not trigger.sql:
            raise ValueError(f"SQLite trigger {trigger.name} needs the SQL that installs it")
        _EXPECTED[vendor][trigger.name] = trigger


def expected_triggers(vendor: str) -> list[ExpectedTrigger]:
    return sorted(_EXPECTED.get(vendor, {}).values(), key=lambda t: (t.table, t.name))


def pgtriggers(*models: Any) -> list[ExpectedTrigger]:
    """The PostgreSQL triggers that pgtrigger installs from these models' Meta.triggers."""
    return [ExpectedTrigger(table=model._meta.db_table, name=trigger.get_pgid(model),
                            refuses=f"{trigger.operation} on {model._meta.db_table}")
            for model in models for trigger in getattr(model._meta, "triggers", [])]


def sqlite_refusal(table: str, operation: str, message: str, *, when: str = "") -> ExpectedTrigger:
    """A SQLite trigger `<table>_no_<operation>` that aborts the statement with `message` (only `when`, if given)."""
    name = f"{table}_no_{operation.lower()}"
    condition = f" WHEN {when}" if when else ""
    sql = (f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {operation} ON {table}{condition} "
           f"BEGIN SELECT RAISE(ABORT, '{message}'); END")
    return ExpectedTrigger(table=table, name=name, refuses=f"{operation} on {table}", sql=sql)


@dataclass(frozen=True)
class TriggerProblem:
    trigger: ExpectedTrigger
    problem: str  # "missing" | "disabled"


def _present(connection: BaseDatabaseWrapper) -> dict[tuple[str, str], bool]:
    """{(table, trigger name): enabled} of the user triggers in the database."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT c.relname, t.tgname, t.tgenabled <> 'D' FROM pg_trigger t "
                           "JOIN pg_class c ON c.oid = t.tgrelid "
                           "WHERE NOT t.tgisinternal AND c.relnamespace = to_regnamespace(current_schema())")
            return {(table, name): bool(enabled) for table, name, enabled in cursor.fetchall()}
        if connection.vendor == "sqlite":
            cursor.execute("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
            return {(table, name): True for table, name in cursor.fetchall()}
    return {}


def triggers_missing(connection: BaseDatabaseWrapper) -> list[TriggerProblem]:
    """Expected triggers of this engine that are missing or switched off (tables not created yet don't count)."""
    expected = expected_triggers(connection.vendor)
    if not expected:
        return []
    tables = set(connection.introspection.table_names())
    present = _present(connection)
    problems = []
    for trigger in expected:
        if trigger.table not in tables:
            continue
        enabled = present.get((trigger.table, trigger.name))
        if enabled is None:
            problems.append(TriggerProblem(trigger, "missing"))
        elif not enabled:
            problems.append(TriggerProblem(trigger, "disabled"))
    return problems


def sqlite_triggers_install(connection: BaseDatabaseWrapper) -> list[str]:
    """Install the expected SQLite triggers that are missing; returns their names. Idempotent."""
    if connection.vendor != "sqlite":
        return []
    installed = []
    with connection.cursor() as cursor:
        for problem in triggers_missing(connection):
            cursor.execute(problem.trigger.sql)
            installed.append(problem.trigger.name)
    return installed


def sqlite_triggers_reinstall_after_migrate(using: str = "default", **kwargs: Any) -> None:
    """post_migrate: put back what a table rebuild dropped (see the module's docstring)."""
    from django.db import connections

    sqlite_triggers_install(connections[using])
