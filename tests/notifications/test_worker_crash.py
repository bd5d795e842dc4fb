"""A real Celery worker on Redis is SIGKILLed mid-delivery; after a restart no event is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection, transaction

from notifications.actors import OperatorActor
from notifications.deliveries.webhooks import webhook_endpoint_create
from notifications.models import Delivery, DeliveryStatus, OutboxEvent
from notifications.outbox.catalogue import Event
from notifications.outbox.emit import event_emit

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _worker_env() -> dict[str, str]:
    db_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "trustguard.settings_test",
        "DATABASE_URL": db_url,  # the test database, where this test commits its rows
        "REDIS_URL": os.environ["REDIS_URL"],
        "TRUSTGUARD_WEBHOOK_ALLOW_PRIVATE": "1",
        "TRUSTGUARD_DELIVERY_LEASE_SECONDS": "3",
        "TRUSTGUARD_DELIVERY_BACKOFF_BASE": "1",
        "TRUSTGUARD_WEBHOOK_TIMEOUT": "10",
        "LOG_JSON": "0",
    }


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"worker-{len(started)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "trustguard", "worker", "--loglevel=INFO", "--concurrency=2",
             "--pool=prefork", "--without-gossip", "--without-mingle", "-n", f"crashtest-{uuid.uuid4().hex[:8]}@%h"],
            cwd=ROOT, env=_worker_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _beat_until(done: Callable[[], bool], timeout: float) -> bool:
    """Act as beat: ask the worker to run the two outbox jobs until `done` holds (or time runs out)."""
    from trustguard.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        for job in ("notifications.relay_outbox", "notifications.deliver_due"):
            app.send_task(job)
        time.sleep(1)
    return done()


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_loses_no_event(make_tenant, http_receiver, worker):
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()  # no stale tasks or breaker state from other runs
    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=OperatorActor.system("test"), url=http_receiver.url)
    http_receiver.hold = threading.Event()  # requests hang: the worker is mid-delivery when killed

    first = worker()
    with transaction.atomic():  # the on-commit kick publishes the relay task to the worker
        for i in range(12):
            event_emit(Event(tenant_id=tenant.pk, type="escalation.created", aggregate_type="escalation",
                       aggregate_id=f"esc-{i % 4}", data={"n": i}))
    event_ids = {str(e) for e in OutboxEvent.objects.values_list("event_id", flat=True)}

    assert http_receiver.arrived.wait(60), "the worker never started delivering"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    in_flight = {r.headers["webhook-id"] for r in http_receiver.requests}
    held = http_receiver.hold
    http_receiver.hold = None
    held.set()  # the hung handlers answer a dead socket

    worker()

    def all_delivered() -> bool:
        return Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == len(event_ids)

    assert _beat_until(all_delivered, timeout=120), list(Delivery.objects.values("id", "status", "attempts"))
    received = [r.headers["webhook-id"] for r in http_receiver.requests]
    assert set(received) == event_ids  # every event arrived at least once
    assert not OutboxEvent.objects.filter(relayed_at__isnull=True).exists()
    assert not Delivery.objects.filter(status=DeliveryStatus.DEAD).exists()
    # What was in flight at the kill was sent again: at least once, and the receiver can de-duplicate.
    assert in_flight and all(received.count(event_id) >= 2 for event_id in in_flight)
    # Per escalation, the first arrival of each event follows event order.
    order = {str(e.event_id): (e.aggregate_id, e.pk) for e in OutboxEvent.objects.all()}
    first_seen: dict[str, list[int]] = {}
    for event_id in dict.fromkeys(received):
        aggregate, seq = order[event_id]
        first_seen.setdefault(aggregate, []).append(seq)
    assert all(seqs == sorted(seqs) for seqs in first_seen.values())
