"""/healthz: 200 when database, broker and beat are healthy; 503 naming the failing check."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from trustguard.health import beat_heartbeat_write

pytestmark = pytest.mark.django_db


def test_healthy_when_database_broker_and_beat_are_alive(client):
    beat_heartbeat_write()

    response = client.get("/healthz")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    statuses = {name: check["status"] for name, check in body["checks"].items()}
    assert statuses.items() >= {"database": "ok", "broker": "ok", "beat": "ok"}.items()


def test_a_stale_beat_heartbeat_is_unhealthy_and_named(client):
    with time_machine.travel(timezone.now() - timedelta(minutes=4)):
        beat_heartbeat_write()

    response = client.get("/healthz")

    assert response.status_code == 503
    assert "beat" in response.json()["failing"]
    assert response.json()["checks"]["beat"]["age_seconds"] >= 240


def test_an_unreachable_broker_is_unhealthy_and_named(client, settings):
    beat_heartbeat_write()
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6390/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


def test_the_answer_keeps_the_contract_s_shape_and_check_order(client):
    beat_heartbeat_write()

    body = client.get("/healthz").json()

    assert list(body)[:2] == ["status", "checks"]
    assert list(body["checks"]) == ["database", "broker", "beat", "queue", "outbox", "deliveries", "providers",
                                   "audit_sealing"]
    assert [name for name, check in body["checks"].items() if check["critical"]] == ["database", "broker", "beat"]
    assert body["checks"]["database"]["vendor"] in ("sqlite", "postgresql")


def test_a_check_is_a_django_health_check_check_that_raises_what_it_reports():
    import asyncio

    from django.core.cache import cache
    from health_check import HealthCheck
    from health_check.exceptions import ServiceUnavailable

    from trustguard.health import HEARTBEAT_KEY
    from trustguard.health_checks import BeatCheck

    cache.delete(HEARTBEAT_KEY)
    check = BeatCheck()

    result = asyncio.run(check.get_result())

    assert isinstance(check, HealthCheck)
    assert isinstance(result.error, ServiceUnavailable)
    assert check.report == {"status": "fail", "detail": "no heartbeat from beat yet"}
