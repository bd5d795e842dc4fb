"""Nobody calls the sweep by hand: a real Celery beat schedules it, a real worker runs it (Redis broker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.db import connection
from django.utils import timezone

from escalations.models import Escalation
from escalations.services import SourceRef, escalation_create

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 90


def test_database_url() -> str:
    """DATABASE_URL pointing at the database pytest-django created (test_<name>), where the test's rows are."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


test_database_url.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "trustguard", *args], cwd=log.parent, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_beat_and_a_worker_re_escalate_an_overdue_case_on_their_own(vendor, tmp_path):
    case = escalation_create(actor=vendor, type="SMR", reason="Unusual deposits",
                             source=SourceRef("core-banking", "customer", "CUST-7"))
    Escalation.objects.filter(pk=case.pk).update(ack_due_at=timezone.now() - timedelta(minutes=1))
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete("celery")  # no stale messages from earlier runs
    env = {**os.environ, "DATABASE_URL": test_database_url(), "TRUSTGUARD_SWEEP_INTERVAL": "5",
           "DJANGO_SETTINGS_MODULE": "trustguard.settings_test", "DB_CONN_MAX_AGE": "0",
           "PYTHONPATH": str(REPO), "LOG_JSON": "0"}
    worker = start(["worker", "--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle"], env,
                   tmp_path / "worker.log")
    beat = start(["beat", "--loglevel=INFO", "--pidfile=", "--max-interval=2"], env, tmp_path / "beat.log")
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        level = 0
        while time.monotonic() < deadline and level == 0:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert beat.poll() is None, (tmp_path / "beat.log").read_text()[-3000:]
            level = Escalation.objects.values_list("escalation_level", flat=True).get(pk=case.pk)
            time.sleep(0.5)  # polling interval, not a timing assertion
    finally:
        stop(beat)
        stop(worker)

    case.refresh_from_db()
    logs = (tmp_path / "beat.log").read_text()[-2000:] + (tmp_path / "worker.log").read_text()[-3000:]
    assert (case.escalation_level, case.assigned_role) == (1, "senior_manager"), logs
    assert "escalations.sweep_deadlines" in (tmp_path / "beat.log").read_text()
