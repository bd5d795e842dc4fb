"""A restore refuses what would lose data or load the wrong thing, before it changes anything; the restore
checks name what is wrong. (Both engines: the refusals come before any engine-specific loading.)"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from accounts.models import Tenant
from trustguard.backup import backups_prune
from trustguard.backup.checks import restore_checks_run

pytestmark = pytest.mark.django_db


def a_backup(tmp_path: Path, *, engine: str | None = None, sha256: str | None = None) -> Path:
    """A backup file of this engine (an SQLite file is a real, empty database) with its manifest."""
    engine = engine or ("postgresql" if connection.vendor == "postgresql" else "sqlite")
    path = tmp_path / f"trustguard-{engine}-20250101T000000Z.{'dump' if engine == 'postgresql' else 'sqlite3'}"
    if engine == "sqlite":
        sqlite3.connect(path).close()
    else:
        path.write_bytes(b"PGDMP")
    manifest = {"format": 1, "engine": engine, "sha256": sha256 or hashlib.sha256(path.read_bytes()).hexdigest(),
                "rows": {}, "keys": {}}
    path.with_name(path.name + ".json").write_text(json.dumps(manifest))
    return path


def test_a_restore_into_a_database_that_holds_data_is_refused_and_changes_nothing(demo, tmp_path):
    with pytest.raises(CommandError, match="is not empty"):
        call_command("restore", str(a_backup(tmp_path)))

    assert Tenant.objects.filter(slug="demo").exists()


def test_a_backup_that_does_not_match_its_manifest_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="does not match the sha256 in its manifest"):
        call_command("restore", str(a_backup(tmp_path, sha256="0" * 64)))


def test_a_backup_of_the_other_engine_is_refused(db, tmp_path):
    other = "sqlite" if connection.vendor == "postgresql" else "postgresql"

    with pytest.raises(CommandError, match=f"is a {other} backup"):
        call_command("restore", str(a_backup(tmp_path, engine=other)))


def test_a_missing_backup_file_is_named(db, tmp_path):
    with pytest.raises(CommandError, match="no such backup file"):
        call_command("restore", str(tmp_path / "nothing.dump"))


@pytest.mark.postgres
def test_replace_is_refused_on_postgresql_which_restores_into_a_new_database(db, tmp_path):
    with pytest.raises(CommandError, match="SQLite only"):
        call_command("restore", "--replace", str(a_backup(tmp_path)))


def test_the_restore_checks_pass_on_a_whole_database_and_name_a_table_whose_rows_differ(demo):
    tenants = Tenant.objects.count()

    whole = restore_checks_run(manifest={"rows": {"accounts_tenant": tenants}, "keys": {}})
    short = restore_checks_run(manifest={"rows": {"accounts_tenant": tenants + 1}, "keys": {}})

    assert [r.name for r in whole if not r.ok] == []
    assert [r.name for r in short if not r.ok] == ["rows"]
    assert f"accounts_tenant: {tenants + 1} in the backup, {tenants} now" in next(r.detail for r in short if r.name == "rows")


def test_verify_restore_exits_1_naming_the_failed_check(demo, tmp_path):
    backup = a_backup(tmp_path)
    manifest_path = backup.with_name(backup.name + ".json")
    manifest = json.loads(manifest_path.read_text())
    manifest["rows"] = {"accounts_tenant": 1000}
    manifest_path.write_text(json.dumps(manifest))

    with pytest.raises(CommandError, match="restore checks failed: rows") as failed:
        call_command("verify_restore", "--manifest-of", str(backup))

    assert failed.value.returncode == 1


def test_keep_deletes_all_but_the_newest_backups_and_their_manifests_and_nothing_else(tmp_path):
    names = [f"trustguard-sqlite-2025010{d}T000000Z.sqlite3" for d in range(1, 5)]
    for name in [*names, "notes.txt", "trustguard-sqlite-20250101T000000Z.sqlite3.partial"]:
        (tmp_path / name).write_text("x")
        (tmp_path / (name + ".json")).write_text("{}")

    removed = backups_prune(directory=tmp_path, keep=2)

    assert [p.name for p in removed] == names[:2]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert [n for n in left if n.endswith(".sqlite3")] == names[2:]
    assert "notes.txt" in left and f"{names[3]}.json" in left and f"{names[0]}.json" not in left
