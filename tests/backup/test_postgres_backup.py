"""PostgreSQL's logical backup (`manage.py backup`: pg_dump) while the application writes, restored by
`manage.py restore` into a new database. (Point-in-time recovery with pgBackRest: the CI restore drill.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from accounts.actors import Actor
from accounts.models import ApiKey, Tenant
from escalations.demo import seed_demo
from escalations.services import SourceRef, escalation_create
from tests.processes import app_env

from .conftest import manage

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def url(name: str) -> str:
    db = settings.DATABASES["default"]
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


def admin_sql(statement: str) -> None:
    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                         password=db.get("PASSWORD") or None, dbname="postgres", autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A new, empty database beside the test database, dropped afterwards."""
    name = f"{settings.DATABASES['default']['NAME']}_restored"
    admin_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin_sql(f'CREATE DATABASE "{name}"')
    yield name
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_dump_taken_while_escalations_are_created_restores_into_a_new_database_whole(empty_database, tmp_path):
    seed_demo("demo")
    tenant = Tenant.objects.get(slug="demo")
    vendor = Actor(tenant=tenant, api_key=ApiKey.objects.get(tenant=tenant, name="vendor"))
    stop = threading.Event()
    created: list[object] = []
    errors: list[BaseException] = []

    def source_system() -> None:
        try:
            while not stop.is_set():
                created.append(escalation_create(actor=vendor, type="SANCTIONS_MATCH", reason="Screening hit",
                                                 source=SourceRef("screening", "customer", f"C-{len(created)}"),
                                                 requested_by="kyc@bank.example").pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    writer = threading.Thread(target=source_system)
    writer.start()
    try:
        backup = manage(app_env(var_dir=tmp_path, database_url=url(settings.DATABASES["default"]["NAME"])),
                        "backup", "--output", str(tmp_path / "backups"))
    finally:
        stop.set()
        writer.join(timeout=120)
    assert errors == [] and backup.returncode == 0, (errors, backup.stdout + backup.stderr)
    dump = next((tmp_path / "backups").glob("trustguard-postgresql-*.dump"))
    manifest = json.loads(Path(str(dump) + ".json").read_text())

    restored = manage(app_env(var_dir=tmp_path, database_url=url(empty_database)), "restore", str(dump))

    assert restored.returncode == 0, restored.stdout + restored.stderr
    # The counts of the manifest and the dump are one snapshot, whatever the writer did meanwhile.
    assert "ok   rows:" in restored.stdout and "ok   audit: verify_audit: OK" in restored.stdout
    assert 0 < manifest["rows"]["escalations_escalation"] <= len(created)
    with psycopg.connect(url(empty_database)) as conn:
        triggers = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_auditevent'::regclass "
                                "AND NOT tgisinternal").fetchone()
    assert triggers is not None and triggers[0] > 0  # the audit trail's protection came back with it
