"""Copying the database out and back in, per engine. The orchestration is in trustguard.backup.

SQLite: the online backup API (`sqlite3.Connection.backup`) in a single step, which copies every page
under one read transaction: a consistent snapshot while web, worker and beat keep writing (WAL mode
lets them). PostgreSQL: `pg_dump --format=custom` under a snapshot the caller exported, and
`pg_restore` in a single transaction (all or nothing). The PostgreSQL tools get their connection from
PG* environment variables, never from the command line, where other users of the machine could read
a password.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says what to do."""


# --- SQLite -------------------------------------------------------------------------------------------

def sqlite_copy(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    """Copy `source` over `target` in one step of the online backup API (one consistent snapshot)."""
    source.backup(target)


def sqlite_snapshot(source: sqlite3.Connection, path: Path) -> None:
    """Write a consistent copy of `source` to `path`: one self-contained file (no -wal), checked."""
    target = sqlite3.connect(path)
    try:
        sqlite_copy(source, target)
        # The copy carries the source's WAL flag; a backup is one file, to be moved and copied as it is.
        target.execute("PRAGMA journal_mode=DELETE")
        sqlite_check(target, what=str(path))
    finally:
        target.close()


def sqlite_check(conn: sqlite3.Connection, *, what: str) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
    if problems != ["ok"]:
        raise BackupError(f"{what} fails SQLite's integrity check: {'; '.join(problems[:5])}")


def sqlite_open_backup(path: Path) -> sqlite3.Connection:
    """A backup file, read-only (a restore never changes its source)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database ({exc})") from exc
    return conn


def sqlite_table_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                            "AND name NOT LIKE 'sqlite_%'").fetchone()[0])


# --- PostgreSQL ---------------------------------------------------------------------------------------

# Connection options that libpq reads from the environment as well (the rest stay Django's business).
_LIBPQ_OPTIONS = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
                  "sslkey": "PGSSLKEY", "connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS"}


def pg_environment(database: dict[str, Any]) -> dict[str, str]:
    """The environment that points pg_dump / pg_restore at `database` (a DATABASES entry)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for setting, variable in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"),
                              ("PASSWORD", "PGPASSWORD"), ("NAME", "PGDATABASE")):
        if database.get(setting):
            env[variable] = str(database[setting])
    for option, variable in _LIBPQ_OPTIONS.items():
        if database.get("OPTIONS", {}).get(option) is not None:
            env[variable] = str(database["OPTIONS"][option])
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ImproperlyConfigured(f"{name} is not installed: install the PostgreSQL client tools of the server's "
                                   f"major version (Debian: postgresql-client-<version>)")
    return path


def _run(args: list[str], env: dict[str, str], *, what: str) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603 (our own arguments)
    if result.returncode != 0:
        raise BackupError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")


def pg_dump(database: dict[str, Any], path: Path, *, snapshot: str) -> None:
    """Dump the database as it was in `snapshot` (exported by the caller's open transaction)."""
    _run([_tool("pg_dump"), "--format=custom", "--no-password", f"--snapshot={snapshot}", f"--file={path}"],
         pg_environment(database), what="pg_dump")


def pg_restore(database: dict[str, Any], path: Path) -> None:
    """Load a custom-format dump into the (empty) database, all or nothing.

    Owners and grants are not restored: the objects belong to whoever restores (the role that owns the
    new database), so a dump moves between clusters whose roles differ.
    """
    _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
          "--no-password", f"--dbname={database['NAME']}", str(path)],
         pg_environment(database), what="pg_restore")
