"""The embedded SQLite default: a backup taken while the application writes is one consistent moment, and
`manage.py restore` brings it back whole (verify_audit, rows, keys), as docs/BACKUP.md tells an operator."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import app_env, wait_for

from .conftest import ROOT, manage

# django_db: the suite's test database must exist, as it is the source of the migrated file (migrated_sqlite).
pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def committed(log: Path) -> list[str]:
    """Escalation ids the source system saw committed, as SQLite stores them (hex)."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [uuid.UUID(line).hex for line in lines if line.strip()]


def escalation_ids(database: Path) -> set[str]:
    with sqlite3.connect(database) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM escalations_escalation")}


@dataclass
class Backed:
    live: Path  # the embedded default's var/ directory, still written to after the backup
    backup: Path
    before_backup: list[str]  # escalations committed before the backup began
    log: Path  # every escalation the source system saw committed, up to its stop


@pytest.fixture(scope="module")
def backed_up(migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory) -> Backed:
    """`manage.py backup` of the embedded default while a source system keeps writing (before, during, after)."""
    tmp = tmp_path_factory.mktemp("sqlite-backup")
    live = tmp / "live"
    live.mkdir()
    shutil.copy(migrated_sqlite, live / "trustguard.sqlite3")
    log, stop = tmp / "created.log", tmp / "stop"
    writer = subprocess.Popen([sys.executable, "-m", "tests.backup.source_system", str(log), str(stop)], cwd=ROOT,
                              env=app_env(var_dir=live), stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(committed(log)) >= 3 or writer.poll() is not None, what="the first escalations")
        before_backup = committed(log)
        backup = manage(app_env(var_dir=live), "backup", "--output", str(tmp / "backups"))
        after_backup = len(committed(log))
        wait_for(lambda: len(committed(log)) >= after_backup + 3 or writer.poll() is not None, what="writes after it")
    finally:
        stop.touch()
        _, errors = writer.communicate(timeout=120)
    assert writer.returncode == 0, errors
    assert backup.returncode == 0, backup.stdout + backup.stderr
    return Backed(live=live, backup=next((tmp / "backups").glob("trustguard-sqlite-*.sqlite3")),
                  before_backup=before_backup, log=log)


def test_a_backup_taken_while_a_source_system_writes_restores_whole_to_the_moment_it_was_taken(backed_up, tmp_path):
    restored = tmp_path / "restored"

    result = manage(app_env(var_dir=restored), "restore", str(backed_up.backup))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   audit: verify_audit: OK" in result.stdout and "ok   rows:" in result.stdout
    in_backup = escalation_ids(restored / "trustguard.sqlite3")
    # One moment: everything committed before the backup began, nothing the source wrote after it ended.
    assert set(backed_up.before_backup) <= in_backup < set(committed(backed_up.log))
    manifest = json.loads(backed_up.backup.with_name(backed_up.backup.name + ".json").read_text())
    assert manifest["rows"]["escalations_escalation"] == len(in_backup)
    with sqlite3.connect(restored / "trustguard.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # as the application runs it


def test_restoring_over_the_live_database_with_replace_keeps_the_old_one_aside(backed_up):
    database = backed_up.live / "trustguard.sqlite3"
    everything = escalation_ids(database)

    result = manage(app_env(var_dir=backed_up.live), "restore", "--replace", str(backed_up.backup))

    assert result.returncode == 0, result.stdout + result.stderr
    aside = next(backed_up.live.glob("trustguard.sqlite3.before-restore-*"))
    assert f"the database as it was before: {aside}" in result.stdout
    assert escalation_ids(aside) == everything
    assert escalation_ids(database) < everything
