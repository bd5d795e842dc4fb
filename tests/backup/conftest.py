"""Backups are taken and restored by the real commands, in processes of their own, as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from trustguard.backup.engines import sqlite_snapshot

ROOT = Path(settings.BASE_DIR)


def app_env(*, var_dir: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a TrustGuard process: the embedded SQLite in `var_dir`, or `database_url`."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="trustguard.settings_test", TRUSTGUARD_VAR_DIR=str(var_dir), LOG_LEVEL="WARNING",
               **extra)
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240, check=False)


def wait_for(condition: Callable[[], bool], *, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


@pytest.fixture(scope="session")
def migrated_sqlite(django_db_setup: None, django_db_blocker: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite database file: a backup of the suite's own test database (SQLite runs only)."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's online backup: this runs in the embedded-defaults pass (PostgreSQL has its own tests)")
    path = tmp_path_factory.mktemp("migrated") / "trustguard.sqlite3"
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        connection.ensure_connection()
        sqlite_snapshot(connection.connection, path)
    return path
