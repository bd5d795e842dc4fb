"""Is a restored database whole, and does it work with the keys we hold? (`manage.py verify_restore`)

Checks in a registry, like /healthz's: the project's own (system checks, migrations, the audit chain
through `verify_audit`, and, given a backup's manifest, row counts and key fingerprints), and what apps
add with `register_restore_check` at AppConfig.ready() (e.g. notifications: can the webhook secrets be
decrypted?). A check returns (ok, detail); raising counts as failing, so one broken table never hides
the others' results.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from trustguard.crypto import SecretUnreadable, decrypt

from .keys import keys_missing

CheckFunc = Callable[[], tuple[bool, str]]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


_REGISTRY: dict[str, CheckFunc] = {}


def register_restore_check(name: str) -> Callable[[CheckFunc], CheckFunc]:
    def decorator(func: CheckFunc) -> CheckFunc:
        _REGISTRY[name] = func
        return func

    return decorator


@dataclass(frozen=True)
class Unreadable:
    total: int
    unreadable: int
    reason: str


def sealed_values_unreadable(values: Iterable[str]) -> Unreadable:
    """How many of these sealed values the field keys at hand cannot open, and the first reason why."""
    total, unreadable, reason = 0, 0, ""
    for stored in values:
        total += 1
        try:
            decrypt(stored)
        except SecretUnreadable as exc:
            unreadable += 1
            reason = reason or str(exc)
    return Unreadable(total, unreadable, reason)


def _run(name: str, func: CheckFunc) -> CheckResult:
    try:
        ok, detail = func()
    except Exception as exc:  # a check reports a failure; it never hides the other checks' results
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return CheckResult(name=name, ok=ok, detail=detail)


def restore_checks_run(*, manifest: dict[str, Any] | None = None) -> list[CheckResult]:
    """Every check, in order: migrations first (without them the others read missing tables)."""
    checks: list[tuple[str, CheckFunc]] = [("migrations", _migrations), ("system checks", _system_checks)]
    if manifest is not None:
        checks += [("rows", lambda: _rows_match(manifest)), ("keys", lambda: _keys_match(manifest))]
    checks += [("audit", _audit), *_REGISTRY.items()]
    return [_run(name, func) for name, func in checks]


def _migrations() -> tuple[bool, str]:
    executor = MigrationExecutor(connection)
    applied = set(executor.loader.applied_migrations)
    unknown = sorted(f"{app}.{name}" for app, name in applied - set(executor.loader.graph.nodes))
    if unknown:
        return False, (f"{len(unknown)} applied migrations are unknown to this code (e.g. {unknown[0]}): the backup "
                       "comes from a newer version; deploy that version")
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        return False, f"{len(pending)} migrations not applied (the backup is from an older version): run manage.py migrate"
    return True, f"{len(applied)} applied, none pending"


def _system_checks() -> tuple[bool, str]:
    out = io.StringIO()
    try:
        call_command("check", stdout=out, stderr=out)
    except CommandError as exc:
        return False, str(exc)
    return True, out.getvalue().strip().splitlines()[-1] if out.getvalue().strip() else "no issues"


def _audit() -> tuple[bool, str]:
    out = io.StringIO()
    try:
        call_command("verify_audit", stdout=out)
    except CommandError as exc:
        return False, f"verify_audit: {exc}"
    return True, f"verify_audit: {out.getvalue().strip()}"


def table_counts(tables: list[str]) -> dict[str, int]:
    """Rows per table, read in the caller's transaction (one snapshot when the caller opened one)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        counts = {}
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {quote(table)}")  # noqa: S608 (names from the app registry)
            counts[table] = int(cursor.fetchone()[0])
    return counts


def _rows_match(manifest: dict[str, Any]) -> tuple[bool, str]:
    recorded: dict[str, int] = manifest.get("rows", {})
    present = set(connection.introspection.table_names())
    now = table_counts(sorted(t for t in recorded if t in present))
    differ = [f"{t}: {recorded[t]} in the backup, {now.get(t, 'no table')} now" for t in sorted(recorded)
              if now.get(t) != recorded[t]]
    if differ:
        return False, f"{len(differ)} tables differ from the backup's manifest: " + "; ".join(differ[:5])
    return True, f"{len(recorded)} tables, {sum(recorded.values())} rows, as in the backup's manifest"


def _keys_match(manifest: dict[str, Any]) -> tuple[bool, str]:
    problems = keys_missing(manifest.get("keys", {}))
    if problems:
        return False, " | ".join(problems)
    return True, "the keys in the environment are those the backup was taken with"
