"""Backups of the configured database (`manage.py backup`, `make backup`) and restoring one (`manage.py restore`).

1. A backup is one file, written under a temporary name and renamed when complete (a failed backup
   leaves nothing that looks like a backup), readable by its owner only (it holds password hashes,
   TOTP seeds and personal data):
   - SQLite: the online backup API, one consistent snapshot while the application keeps writing;
   - PostgreSQL: `pg_dump` under a snapshot exported from the transaction that counted the rows.
2. Beside it, a manifest (`<file>.json`): engine, size, sha256, when, the latest migration per app,
   the rows per table *of that snapshot*, and fingerprints of the keys in use (trustguard.backup.keys).
3. A restore loads the file into the configured, empty database (SQLite: `--replace` keeps a copy of
   the current one first), then runs every restore check against the manifest.

Point-in-time recovery of PostgreSQL (base backups + WAL archive) is pgBackRest's job: docs/BACKUP.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from .checks import CheckResult, restore_checks_run
from .engines import (
    BackupError,
    pg_dump,
    pg_restore,
    sqlite_check,
    sqlite_open_backup,
    sqlite_snapshot,
    sqlite_table_count,
)
from .keys import key_fingerprints

__all__ = ["Backup", "BackupError", "backup_create", "backup_restore", "backups_prune", "manifest_read"]

MANIFEST_FORMAT = 1
_NAME = re.compile(r"^trustguard-(sqlite|postgresql)-\d{8}T\d{6}Z\.(sqlite3|dump)$")


@dataclass(frozen=True)
class Backup:
    path: Path
    manifest_path: Path
    manifest: dict[str, Any]


def _engine() -> str:
    return "postgresql" if connection.vendor == "postgresql" else "sqlite"


def model_tables() -> list[str]:
    """Every table the application's models own (the rows a manifest counts)."""
    tables = {m._meta.db_table for m in apps.get_models(include_auto_created=True)
              if m._meta.managed and not m._meta.proxy}
    return sorted(tables)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _latest_migrations() -> dict[str, str]:
    latest: dict[str, str] = {}
    for app, name in MigrationRecorder(connection).applied_migrations():
        latest[app] = max(latest.get(app, name), name)
    return latest


def backup_create(*, directory: Path, now: datetime | None = None) -> Backup:
    """Back up the configured database into `directory`; return the file and its manifest."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    engine = _engine()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"trustguard-{engine}-{moment:%Y%m%dT%H%M%SZ}.{'dump' if engine == 'postgresql' else 'sqlite3'}"
    if path.exists():
        raise BackupError(f"{path} exists already (one backup per second)")
    partial = path.with_name(path.name + ".partial")
    old_umask = os.umask(0o077)  # the file holds password hashes, TOTP seeds and personal data
    try:
        rows = _sqlite_backup(partial) if engine == "sqlite" else _postgres_backup(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        os.umask(old_umask)
    partial.rename(path)
    manifest = {
        "format": MANIFEST_FORMAT, "engine": engine, "file": path.name, "bytes": path.stat().st_size,
        "sha256": _sha256(path), "created_at": moment.isoformat(), "migrations": _latest_migrations(),
        "rows": rows, "keys": key_fingerprints(),
    }
    manifest_path = path.with_name(path.name + ".json")
    _write_private(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return Backup(path=path, manifest_path=manifest_path, manifest=manifest)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _sqlite_backup(path: Path) -> dict[str, int]:
    connection.ensure_connection()
    sqlite_snapshot(connection.connection, path)
    # Count in the copy itself: exactly what was backed up, whatever was written since.
    copy = sqlite_open_backup(path)
    try:
        present = {r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {t: int(copy.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # noqa: S608 (registry names)
                for t in model_tables() if t in present}
    finally:
        copy.close()


def _postgres_backup(path: Path) -> dict[str, int]:
    # The counts and the dump read one snapshot: that of a transaction on a connection of its own
    # (whatever the caller's connection is doing), exported to pg_dump.
    present = set(connection.introspection.table_names())
    tables = [t for t in model_tables() if t in present]
    raw = connection.get_new_connection(connection.get_connection_params())
    try:
        raw.autocommit = True  # so that our BEGIN is the transaction's first statement, not a nested one
        with raw.cursor() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            rows = {}
            for table in tables:
                cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608 (registry names)
                rows[table] = int(cursor.fetchone()[0])
        pg_dump(dict(settings.DATABASES["default"]), path, snapshot=snapshot)
    finally:
        raw.close()
    return rows


def manifest_read(backup_path: Path) -> dict[str, Any] | None:
    """The manifest beside a backup file, checked against it; None when there is none."""
    manifest_path = backup_path.with_name(backup_path.name + ".json")
    if not manifest_path.exists():
        return None
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise BackupError(f"{manifest_path} is not valid JSON ({exc})") from exc
    if manifest.get("format") != MANIFEST_FORMAT:
        raise BackupError(f"{manifest_path}: unknown manifest format {manifest.get('format')!r}")
    if manifest.get("sha256") != _sha256(backup_path):
        raise BackupError(f"{backup_path} does not match the sha256 in its manifest: the file is damaged or not "
                          "the one the manifest describes")
    return manifest


def backup_restore(*, path: Path, replace: bool = False) -> tuple[Path | None, list[CheckResult]]:
    """Load the backup at `path` into the configured database and check it.

    1. Read and check the manifest (when there is one) and that the file suits this engine.
    2. Refuse a database that already has tables, unless `replace` (SQLite only): then copy the
       current database aside first (returned), so a mistaken restore can be undone.
    3. Load the backup (SQLite: the backup API; PostgreSQL: pg_restore in one transaction).
    4. Run the restore checks against the manifest.
    """
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    manifest = manifest_read(path)
    engine = _engine()
    if manifest is not None and manifest.get("engine") != engine:
        raise BackupError(f"{path} is a {manifest.get('engine')} backup, but DATABASE_URL points at {engine}")
    aside = None
    if engine == "sqlite":
        aside = _sqlite_restore(path, replace=replace)
    else:
        _postgres_restore(path, replace=replace)
    connection.close()  # the checks read the restored database on a fresh connection
    return aside, restore_checks_run(manifest=manifest)


def _sqlite_restore(path: Path, *, replace: bool) -> Path | None:
    source = sqlite_open_backup(path)
    try:
        sqlite_check(source, what=str(path))
        connection.ensure_connection()
        target: sqlite3.Connection = connection.connection
        aside = None
        if sqlite_table_count(target):
            if not replace:
                raise BackupError(f"the database {settings.DATABASES['default']['NAME']} is not empty: stop the "
                                  "application and run again with --replace (the current database is kept aside)")
            name = Path(str(settings.DATABASES["default"]["NAME"]))
            aside = name.with_name(f"{name.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
            sqlite_snapshot(target, aside)
        source.backup(target)
        target.execute("PRAGMA journal_mode=WAL")  # what the application runs with (settings.py)
        return aside
    finally:
        source.close()


def _postgres_restore(path: Path, *, replace: bool) -> None:
    if replace:
        raise BackupError("--replace is for SQLite only: restore PostgreSQL into a new, empty database "
                          "(createdb, point DATABASE_URL at it), then switch the application over")
    tables = connection.introspection.table_names()
    if tables:
        raise BackupError(f"the database {settings.DATABASES['default']['NAME']} is not empty ({len(tables)} tables): "
                          "restore into a new, empty database (createdb) and point DATABASE_URL at it")
    connection.close()  # pg_restore runs its own connection; ours must not hold anything open
    pg_restore(dict(settings.DATABASES["default"]), path)


def backups_prune(*, directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups (and their manifests) that this command wrote in `directory`."""
    ours = sorted((p for p in directory.iterdir() if _NAME.match(p.name)), key=lambda p: p.name.split("-", 2)[2])
    removed = ours[:-keep] if keep > 0 else []
    for old in removed:
        old.unlink()
        old.with_name(old.name + ".json").unlink(missing_ok=True)
    return removed
