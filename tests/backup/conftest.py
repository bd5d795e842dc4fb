"""Backups are taken and restored by the real commands, in processes of their own, as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from trustguard.backup.engines import sqlite_snapshot

ROOT = Path(settings.BASE_DIR)


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240, check=False)


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
