"""docs/DEPLOYMENT.md, "Least privilege", end to end on PostgreSQL: `.ci/db-roles.sh` makes the two roles, `migrate`
runs as the owner and grants the application's role, the application works as that role and cannot change the audit
trail, and web and worker refuse to start as the owner."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.skipif(not shutil.which("psql"), reason="needs PostgreSQL's client (psql)")]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A database and its two roles made by .ci/db-roles.sh (names of this run), migrated as the owner granting the
    application's role (TRUSTGUARD_DB_APP_ROLE), as docs/DEPLOYMENT.md says; dropped afterwards."""
    admin = connection.settings_dict
    suffix = secrets.token_hex(3)
    names = {"db": f"tg_lp_{suffix}", "owner": f"tg_lp_owner_{suffix}", "app": f"tg_lp_app_{suffix}"}
    pg = {"PGHOST": str(admin.get("HOST") or "127.0.0.1"), "PGPORT": str(admin.get("PORT") or 5432),
          "PGUSER": str(admin["USER"]), "PGPASSWORD": str(admin.get("PASSWORD") or ""), "PATH": os.environ["PATH"]}
    made = subprocess.run([str(ROOT / ".ci" / "db-roles.sh"), names["db"], names["owner"], names["app"]], env=pg,
                          capture_output=True, text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    url = f"postgres://{{}}@{pg['PGHOST']}:{pg['PGPORT']}/{names['db']}"
    made_env = {**names, **pg, "owner_url": url.format(names["owner"]), "app_url": url.format(names["app"]),
                "var": str(tmp_path_factory.mktemp("least-privilege"))}
    migrated = run(made_env, made_env["owner_url"], "manage.py", "migrate", "--no-input", "-v0",
                   TRUSTGUARD_DB_APP_ROLE=names["app"])
    assert migrated.returncode == 0, migrated.stderr
    yield made_env
    for sql in (f'DROP DATABASE IF EXISTS "{names["db"]}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{names["owner"]}"',
                f'DROP ROLE IF EXISTS "{names["app"]}"'):
        subprocess.run(["psql", "-X", "-q", "-d", "postgres", "-c", sql], env=pg, capture_output=True, timeout=60,
                       check=False)


def run(deployment: dict[str, str], url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "DEBUG": "0", "SECRET_KEY": "least-privilege-test-" + "k" * 40,
           "TRUSTGUARD_AUDIT_KEY": "k1:least-privilege-audit-key-" + "a" * 20,
           "TRUSTGUARD_AUDIT_SIGNING_KEY": "s1:" + base64.urlsafe_b64encode(b"s" * 32).decode(),
           "TRUSTGUARD_FIELD_KEYS": base64.urlsafe_b64encode(b"f" * 32).decode(),
           "TRUSTGUARD_VAR_DIR": deployment["var"], "DATABASE_URL": url, "LOG_LEVEL": "WARNING", **extra}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
                          check=False)


def psql_as(deployment: dict[str, str], role: str, sql: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: deployment[k] for k in ("PGHOST", "PGPORT", "PATH")}, "PGUSER": role}
    return subprocess.run(["psql", "-X", "-q", "-d", deployment["db"], "-c", sql], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_migrate_as_the_owner_then_the_application_role_works_but_cannot_change_the_audit_trail(deployment):
    seeded = run(deployment, deployment["app_url"], "manage.py", "seed_demo")
    swept = run(deployment, deployment["app_url"], "manage.py", "run_sweeps")  # retention, verification, anchor
    verified = run(deployment, deployment["app_url"], "manage.py", "verify_audit", "--anchors")

    assert seeded.returncode == 0, seeded.stderr
    assert "audit.verify_chains: OK" in swept.stdout and "anchored in" in swept.stdout, swept.stdout + swept.stderr
    assert verified.returncode == 0 and verified.stdout.startswith("OK "), verified.stdout + verified.stderr
    for sql, refusal in [("UPDATE audit_auditevent SET action = 'x'", "permission denied"),
                         ("DELETE FROM audit_auditevent", "permission denied"),
                         ("TRUNCATE audit_auditevent", "permission denied"),
                         ("ALTER TABLE audit_auditevent DISABLE TRIGGER USER", "must be owner"),
                         ("DELETE FROM approvals_decision", "permission denied"),
                         ("TRUNCATE audit_auditcheckpoint", "permission denied")]:
        result = psql_as(deployment, deployment["app"], sql)
        assert result.returncode != 0 and refusal in result.stderr, (sql, result.stderr)


def test_web_and_worker_start_as_the_application_role_and_refuse_as_the_owner(deployment):
    start_web = ["-c", "import trustguard.wsgi; print('serving')"]

    as_app = run(deployment, deployment["app_url"], *start_web)
    as_owner = run(deployment, deployment["owner_url"], *start_web)
    allowed = run(deployment, deployment["owner_url"], *start_web, TRUSTGUARD_ALLOW_OWNER_ROLE="1")
    worker = run(deployment, deployment["owner_url"], "-m", "celery", "-A", "trustguard", "worker", "--pool=solo")

    assert as_app.returncode == 0 and "serving" in as_app.stdout, as_app.stderr
    assert as_owner.returncode != 0 and "trustguard.E011" in as_owner.stderr
    assert f"role '{deployment['owner']}' owns audit_auditevent" in as_owner.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert worker.returncode != 0 and "trustguard.E011" in worker.stderr
