"""Publishing on the request path is best-effort (trustguard.broker): a broker outage costs no request, the work
stays in the database for the sweeps, the breaker stops the trying, /healthz and a metric say so.

The latency side (p95 during an outage vs the same run's normal p95, on a live server with a Redis of its own
stopped) is measured by tests/multinode/test_multinode.py.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from notifications.models import OutboxEvent
from notifications.relay import outbox_relay
from reports.models import ExportJob
from tests.api.conftest import ORDER
from trustguard.broker import broker_breaker_report, broker_breaker_reset, broker_publish_one
from trustguard.health import beat_heartbeat_write
from trustguard.periodic import job_run

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def skipped(task: str, reason: str) -> float:
    return REGISTRY.get_sample_value("trustguard_broker_publishes_skipped_total", {"task": task, "reason": reason}) or 0.0


def filesystem_broker(settings, folder: Path) -> None:
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(folder), "data_folder_out": str(folder),
                                                "processed_folder": str(folder), "store_processed": False}


@pytest.fixture(autouse=True)
def fresh_breaker() -> Iterator[None]:
    broker_breaker_reset()
    yield
    broker_breaker_reset()


@pytest.fixture
def broker_down(settings) -> str:
    """The broker is a Redis that refuses connections (stopped)."""
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    return settings.CELERY_BROKER_URL


def test_a_create_during_a_broker_outage_is_accepted_and_its_event_waits_for_the_relay_sweep(
        api, broker_down, django_capture_on_commit_callbacks):
    before = skipped("notifications.relay", "broker_error")

    with django_capture_on_commit_callbacks(execute=True):
        response = api("vendor").post("/escalations", ORDER, key=str(uuid.uuid4()))

    assert response.status_code == 201, response.content
    assert skipped("notifications.relay", "broker_error") == before + 1
    event = OutboxEvent.objects.get(type="escalation.created")
    assert event.relayed_at is None
    assert outbox_relay() >= 1  # what beat's notifications.relay_outbox does once the broker is back
    event.refresh_from_db()
    assert event.relayed_at is not None


def test_after_consecutive_failures_the_breaker_opens_and_skips_without_trying(broker_down, settings):
    settings.BROKER_BREAKER_FAIL_MAX = 3
    broker_breaker_reset()
    before = skipped("notifications.relay", "breaker_open")

    results = [broker_publish_one("notifications.relay") for _ in range(5)]

    assert results == [False] * 5
    report = broker_breaker_report()
    assert report["breaker"] == "open"
    assert report["publishes_skipped"] == 5
    assert skipped("notifications.relay", "breaker_open") == before + 2  # the 4th and 5th were not tried


def test_the_breaker_tries_again_after_its_reset_time_and_closes_when_the_broker_is_back(settings, tmp_path):
    settings.BROKER_BREAKER_FAIL_MAX = 1
    settings.BROKER_BREAKER_RESET_SECONDS = 10
    filesystem_broker(settings, tmp_path / "not-made-yet")  # publishing fails: no such folder
    broker_breaker_reset()
    assert broker_publish_one("notifications.relay") is False
    assert broker_breaker_report()["breaker"] == "open"

    (tmp_path / "not-made-yet").mkdir()  # the broker is back
    assert broker_publish_one("notifications.relay") is False  # still inside the reset time: not even tried
    with time_machine.travel(timezone.now() + timedelta(seconds=11)):
        assert broker_publish_one("notifications.relay") is True  # the one trial call

    assert broker_breaker_report()["breaker"] == "closed"
    assert len(list((tmp_path / "not-made-yet").glob("*.msg"))) == 1


def test_healthz_names_the_broker_and_shows_its_breaker_while_kicks_are_skipped(broker_down, settings):
    settings.BROKER_BREAKER_FAIL_MAX = 2
    broker_breaker_reset()
    beat_heartbeat_write()
    for _ in range(3):
        broker_publish_one("notifications.relay")

    response = Client().get("/healthz")

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["broker"]
    broker = body["checks"]["broker"]
    assert (broker["status"], broker["transport"], broker["breaker"], broker["publishes_skipped"]) == (
        "fail", "redis", "open", 3)


def test_an_unwritable_filesystem_broker_fails_health_and_a_create_is_still_accepted(
        api, settings, tmp_path, django_capture_on_commit_callbacks):
    # Root ignores file permissions (CI runs as root), so the broker folder is made unusable another way: the
    # path is a file. A full disk fails the same write with ENOSPC.
    blocked = tmp_path / "broker"
    blocked.write_text("not a folder")
    filesystem_broker(settings, blocked)
    beat_heartbeat_write()

    with django_capture_on_commit_callbacks(execute=True):
        response = api("vendor").post("/escalations", ORDER, key=str(uuid.uuid4()))
    health = Client().get("/healthz").json()

    assert response.status_code == 201, response.content
    assert broker_breaker_report()["publishes_skipped"] >= 1
    assert health["failing"] == ["broker"]
    assert health["checks"]["broker"]["transport"] == "filesystem"
    assert OutboxEvent.objects.filter(relayed_at__isnull=True).exists()


def test_a_writable_filesystem_broker_is_healthy(settings, tmp_path):
    filesystem_broker(settings, tmp_path)
    beat_heartbeat_write()

    broker = Client().get("/healthz").json()["checks"]["broker"]

    assert broker["status"] == "ok"
    assert broker["breaker"] == "closed"
    assert not os.listdir(tmp_path)  # the probe cleans up after itself


def test_an_export_job_whose_kick_was_lost_is_sent_by_the_sweep_once_and_not_again_at_once(
        api, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.EXPORT_DIR = tmp_path / "exports"
    filesystem_broker(settings, tmp_path / "missing")  # down while the job is asked for
    with django_capture_on_commit_callbacks(execute=True):
        created = api("co").post("/exports", {"dataset": "escalations", "format": "csv"})
    assert created.status_code == 202, created.content
    job = ExportJob.objects.get(pk=created.json()["id"])
    assert job.status == ExportJob.Status.QUEUED

    queue = tmp_path / "queue"
    queue.mkdir()
    filesystem_broker(settings, queue)  # the broker is back
    assert job_run("reports.kick_queued_exports") == "kicked 0 export jobs waiting for a worker"  # too early
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        first = job_run("reports.kick_queued_exports")
        again = job_run("reports.kick_queued_exports")

    assert first == "kicked 1 export jobs waiting for a worker"
    assert again == "kicked 0 export jobs waiting for a worker"  # no flood of duplicates while it waits
    assert len(list(queue.glob("*.msg"))) == 1
    job.refresh_from_db()
    assert job.kicked_at is not None
