"""Database-level protections (append-only triggers): which each engine must hold, checked and kept.

Apps declare, in AppConfig.ready(), the triggers that guard their tables, per engine (`expect_triggers`):

- PostgreSQL: pgtrigger installs them from the models' Meta.triggers through migrations (`pgtriggers`).
- SQLite: the app gives each CREATE TRIGGER statement (`sqlite_refusal`). Migrations install them, but
  SQLite loses a table's triggers whenever Django rebuilds the table (an AlterField, a new primary key
  type...), so after every `migrate` the missing ones are installed again (`sqlite_triggers_install`,
  connected to post_migrate by TrustguardConfig), idempotently.

A system check (trustguard/checks.py) fails when one is missing or disabled on the engine in use, so
`manage.py check`, runserver and the web process's start-up (trustguard/wsgi.py) refuse to run without them.

Triggers stop the application, not whoever owns the tables: the owner may `ALTER TABLE ... DISABLE TRIGGER` or
TRUNCATE. So on PostgreSQL the application connects as a role of its own (docs/DEPLOYMENT.md, "Least privilege"):
`migrate` runs as the owner and grants that role (settings.DB_APP_ROLE) what it needs and no more
(`pg_app_role_grant`): on the tables apps declare insert-only (`expect_insert_only`) SELECT and INSERT alone, and
EXECUTE on the functions they declare (`expect_app_function`), the one door through which such rows may leave.
Web, worker and beat refuse to start (DEBUG=0) while connected as a role that could change those tables
(`insert_only_violations`).
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
_INSERT_ONLY: set[str] = set()
_APP_FUNCTIONS: set[str] = set()
_APP_COLUMN_UPDATES: dict[str, tuple[str, ...]] = {}


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


def expect_insert_only(*tables: str) -> None:
    """Declare tables the application's database role may only SELECT and INSERT (PostgreSQL)."""
    _INSERT_ONLY.update(tables)


def expect_app_function(signature: str) -> None:
    """Declare a function (`name(argtypes)`) the application's role may EXECUTE (a SECURITY DEFINER door)."""
    _APP_FUNCTIONS.add(signature)


def expect_app_column_update(table: str, *columns: str) -> None:
    """Declare columns of an insert-only table the application's role may UPDATE (a trigger must hold what it may
    write there: the audit sealer fills in an event's seal once)."""
    _APP_COLUMN_UPDATES[table] = columns


def insert_only_tables() -> list[str]:
    return sorted(_INSERT_ONLY)


def _quote(connection: BaseDatabaseWrapper, name: str) -> str:
    return str(connection.ops.quote_name(name))


def pg_app_role_grant(connection: BaseDatabaseWrapper, role: str) -> None:
    """Grant `role` what the application needs in the current schema, insert-only tables excepted. Idempotent.

    Every table: SELECT, INSERT, UPDATE, DELETE; insert-only tables: SELECT, INSERT (UPDATE, DELETE, TRUNCATE,
    REFERENCES and TRIGGER revoked); sequences: USAGE, SELECT, UPDATE; the declared functions: EXECUTE. The role
    owns nothing, so it cannot ALTER a table (and so not DISABLE TRIGGER), nor TRUNCATE one.
    """
    if connection.vendor != "postgresql" or not role:
        return
    tables = set(connection.introspection.table_names())
    who = _quote(connection, role)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = _quote(connection, cursor.fetchone()[0])
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {who}")
        # Table by table (never ALL TABLES and then a REVOKE): an insert-only table is never writable for a moment.
        insert_only = sorted(_INSERT_ONLY & tables)
        others = ", ".join(_quote(connection, t) for t in sorted(tables - _INSERT_ONLY))
        if others:
            cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {others} TO {who}")
        if insert_only:
            listed = ", ".join(_quote(connection, t) for t in insert_only)
            cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {listed} FROM {who}")
            cursor.execute(f"GRANT SELECT, INSERT ON {listed} TO {who}")
            for table in insert_only:  # after the REVOKE, which takes column grants with it
                if _APP_COLUMN_UPDATES.get(table):
                    columns = ", ".join(_quote(connection, c) for c in _APP_COLUMN_UPDATES[table])
                    cursor.execute(f"GRANT UPDATE ({columns}) ON {_quote(connection, table)} TO {who}")
        cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {who}")
        for signature in sorted(_APP_FUNCTIONS):
            cursor.execute("SELECT to_regprocedure(%s) IS NOT NULL", [signature])
            if cursor.fetchone()[0]:
                cursor.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {who}")


def pg_app_role_grant_after_migrate(using: str = "default", **kwargs: Any) -> None:
    """post_migrate: grant settings.DB_APP_ROLE its privileges on whatever the migrations created."""
    from django.conf import settings
    from django.db import connections

    pg_app_role_grant(connections[using], getattr(settings, "DB_APP_ROLE", ""))


def insert_only_violations(connection: BaseDatabaseWrapper) -> list[str]:
    """What the connected role may do to insert-only tables beyond SELECT and INSERT (PostgreSQL; empty elsewhere)."""
    if connection.vendor != "postgresql":
        return []
    tables = sorted(_INSERT_ONLY & set(connection.introspection.table_names()))
    found = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT r.rolsuper, pg_has_role(current_user, c.relowner, 'MEMBER'), "
                "has_table_privilege(current_user, c.oid, 'UPDATE'), has_table_privilege(current_user, c.oid, 'DELETE'), "
                "has_table_privilege(current_user, c.oid, 'TRUNCATE'), current_user "
                "FROM pg_class c, pg_roles r WHERE c.oid = to_regclass(%s) AND r.rolname = current_user", [table])
            row = cursor.fetchone()
            if row is None:
                continue
            superuser, owner, update, delete, truncate, user = row
            if superuser or owner:
                found.append(f"role {user!r} {'is a superuser' if superuser else 'owns'} {table}: it can disable its "
                             "triggers, TRUNCATE it and rewrite it")
            elif update or delete or truncate:
                verbs = [v for v, ok in (("UPDATE", update), ("DELETE", delete), ("TRUNCATE", truncate)) if ok]
                found.append(f"role {user!r} may {', '.join(verbs)} {table}")
    return found
