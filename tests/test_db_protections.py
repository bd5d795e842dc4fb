"""The database's own protections (append-only triggers) exist on the engine in use, survive migrations,
and the system check refuses to start without them."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection

from trustguard.db_protections import expected_triggers, triggers_missing

ROOT = Path(__file__).resolve().parent.parent


def drop(trigger_name: str, table: str) -> None:
    """Inside the test's transaction: DDL is transactional on both engines, so it comes back afterwards."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f'DROP TRIGGER "{trigger_name}" ON "{table}"')
        else:
            cursor.execute(f'DROP TRIGGER "{trigger_name}"')


def audit_event_triggers() -> list:
    return [t for t in expected_triggers(connection.vendor) if t.table == "audit_auditevent"]


@pytest.mark.django_db
def test_the_audit_decision_and_checkpoint_triggers_are_installed_on_the_engine_in_use():
    guarded = {trigger.table for trigger in expected_triggers(connection.vendor)}

    assert {"audit_auditevent", "audit_auditcheckpoint", "approvals_decision"} <= guarded
    assert triggers_missing(connection) == []


@pytest.mark.django_db
def test_manage_py_check_fails_naming_a_missing_audit_trigger():
    victim = audit_event_triggers()[0]
    call_command("check")  # passes while every trigger is there

    drop(victim.name, victim.table)

    with pytest.raises(SystemCheckError, match=rf"trustguard\.E010.*{victim.name} on audit_auditevent is missing"):
        call_command("check")


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_a_disabled_trigger_fails_the_check_too():
    victim = audit_event_triggers()[0]
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE audit_auditevent DISABLE TRIGGER "{victim.name}"')

    with pytest.raises(SystemCheckError, match=rf"{victim.name} on audit_auditevent is disabled"):
        call_command("check")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only: its table rebuilds drop triggers")
@pytest.mark.django_db
def test_on_sqlite_every_migrate_puts_back_the_triggers_a_table_rebuild_dropped():
    for trigger in audit_event_triggers():
        drop(trigger.name, trigger.table)  # what Django's copy-drop-rename of audit_auditevent does

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")  # the end of every `migrate`

    assert triggers_missing(connection) == []


@pytest.mark.slow
@pytest.mark.skipif(connection.vendor != "sqlite", reason="runs in the SQLite pass (a fresh embedded database)")
def test_a_fresh_embedded_database_migrated_through_the_whole_history_refuses_to_change_audit_events(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(DEBUG="1", TRUSTGUARD_VAR_DIR=str(tmp_path))

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=240)

    assert manage("migrate", "-v0").returncode == 0
    assert manage("seed_demo").returncode == 0  # writes audit events
    database = sqlite3.connect(tmp_path / "trustguard.sqlite3")

    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        database.execute("UPDATE audit_auditevent SET action = 'nothing.happened'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        database.execute("DELETE FROM audit_auditevent")
    assert manage("check").returncode == 0

    database.execute("DROP TRIGGER audit_auditevent_no_delete")
    database.commit()
    check = manage("check")

    assert check.returncode == 1
    assert "audit_auditevent_no_delete on audit_auditevent is missing" in check.stderr
