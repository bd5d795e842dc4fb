"""/healthz names a stopped broker, /metrics exposes our counters, and each request leaves one log line."""

from __future__ import annotations

import json
import logging

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client
from prometheus_client import REGISTRY
from pythonjsonlogger.json import JsonFormatter

from escalations.services import SourceRef, escalation_acknowledge, escalation_create
from tests.conftest import totp_code
from tests.reports.conftest import decide
from trustguard.health import beat_heartbeat_write

pytestmark = pytest.mark.django_db
CLOSED_PORT_URL = "redis://127.0.0.1:6390/0"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_health_is_ok_with_every_check_named(db):
    beat_heartbeat_write()

    response = Client().get("/healthz")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert {"database", "broker", "beat", "queue", "outbox", "deliveries"} <= set(body["checks"])
    assert body["checks"]["beat"]["age_seconds"] <= 1


def test_health_turns_503_and_names_the_broker_when_it_is_stopped(db, settings):
    beat_heartbeat_write()
    settings.CELERY_BROKER_URL = CLOSED_PORT_URL
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    settings.REDIS_URL = CLOSED_PORT_URL

    response = Client().get("/healthz")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "fail"
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"]["status"] == "fail"
    # The queue depth cannot be read either; it is reported, but it is not what takes the service down.
    assert body["checks"]["queue"]["status"] == "fail"
    assert "queue" in body["warnings"]


def test_a_missing_beat_heartbeat_is_a_failing_check(db, settings):
    from django.core.cache import cache

    from trustguard.health import HEARTBEAT_KEY

    cache.delete(HEARTBEAT_KEY)

    body = Client().get("/healthz").json()

    assert "beat" in body["failing"]


def test_health_reports_the_outbox_backlog(demo, vendor):
    beat_heartbeat_write()
    escalation_create(actor=vendor, type="SMR", reason="Odd", source=SourceRef("shop", "order", "1"))

    outbox = Client().get("/healthz").json()["checks"]["outbox"]

    assert outbox["backlog"] >= 1
    assert outbox["oldest_age_seconds"] >= 0


@pytest.mark.redis
def test_health_reports_the_celery_queue_depth_from_redis(db):
    beat_heartbeat_write()
    client = redis.Redis.from_url(str(django_settings.REDIS_URL))
    before = client.llen("celery")
    client.rpush("celery", b"{}", b"{}", b"{}")
    try:
        queue = Client().get("/healthz").json()["checks"]["queue"]
    finally:
        client.ltrim("celery", 0, before - 1) if before else client.delete("celery")

    assert queue["depth"] == before + 3


def test_the_health_page_is_for_staff_only(db, django_user_model):
    staff = django_user_model.objects.create_user(username="root", email="root@x.example", password="pw-long-enough",
                                                  is_staff=True)
    anonymous = Client().get("/ops/health/")
    client = Client()
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")

    page = client.get("/ops/health/")

    assert anonymous.status_code == 302
    assert page.status_code == 200
    assert b"broker" in page.content


def test_metrics_count_creations_decisions_and_otp_failures(demo, vendor, demo_actor, settings,
                                                            django_capture_on_commit_callbacks):
    settings.METRICS_TOKEN = "scrape-secret"
    created = sample("trustguard_escalations_created_total", type="SMR")
    approvals = sample("trustguard_decisions_total", decision="approve", role="compliance_officer")
    otp_failures = sample("trustguard_otp_failures_total", reason="wrong_code")
    decided = sample("trustguard_time_to_decision_seconds_count")

    with django_capture_on_commit_callbacks(execute=True):
        case = escalation_create(actor=vendor, type="SMR", reason="Odd", source=SourceRef("shop", "order", "1"))
    co = demo_actor("co")
    with django_capture_on_commit_callbacks(execute=True):
        escalation_acknowledge(actor=co, escalation=case)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Exception):
        from escalations.services import escalation_decide

        wrong = "000000" if totp_code(co.user) != "000000" else "111111"
        escalation_decide(actor=co, escalation=case, decision="approve", justification="ok", otp=wrong)
    with django_capture_on_commit_callbacks(execute=True):
        decide(co, case)

    response = Client(HTTP_AUTHORIZATION="Bearer scrape-secret").get("/metrics")

    assert response.status_code == 200
    text = response.content.decode()
    assert 'trustguard_escalations_created_total{type="SMR"}' in text
    assert sample("trustguard_escalations_created_total", type="SMR") == created + 1
    assert sample("trustguard_decisions_total", decision="approve", role="compliance_officer") == approvals + 1
    assert sample("trustguard_otp_failures_total", reason="wrong_code") == otp_failures + 1
    assert "trustguard_time_to_decision_seconds_bucket" in text
    assert sample("trustguard_time_to_decision_seconds_count") == decided + 1  # from the id's own time
    assert "trustguard_outbox_backlog" in text
    assert "django_http_requests_total_by_method_total" in text  # django-prometheus's own


def test_metrics_count_sla_breaches_and_re_escalations_written_in_bulk_by_the_sweep(
        demo, vendor, django_capture_on_commit_callbacks):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from escalations.sweeps import sweep_deadlines

    breaches = sample("trustguard_sla_breaches_total", role="compliance_officer", level="0")
    moves = sample("trustguard_reescalations_total", role="compliance_officer", level="0")
    case = escalation_create(actor=vendor, type="SMR", reason="Odd", source=SourceRef("shop", "order", "1"))

    with time_machine.travel(timezone.now() + timedelta(hours=5), tick=False), \
            django_capture_on_commit_callbacks(execute=True):
        sweep_deadlines(only=["re-escalation"])

    case.refresh_from_db()
    assert case.assigned_role == "senior_manager"
    assert sample("trustguard_sla_breaches_total", role="compliance_officer", level="0") == breaches + 1
    assert sample("trustguard_reescalations_total", role="compliance_officer", level="0") == moves + 1


def test_a_rolled_back_change_is_not_counted(demo, vendor, django_capture_on_commit_callbacks):
    from django.db import transaction

    created = sample("trustguard_escalations_created_total", type="SMR")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        escalation_create(actor=vendor, type="SMR", reason="Odd", source=SourceRef("shop", "order", "1"))
        raise RuntimeError("the caller's transaction fails afterwards")

    assert sample("trustguard_escalations_created_total", type="SMR") == created


def test_metrics_need_the_token_or_a_staff_session_outside_debug(db, settings, django_user_model):
    settings.DEBUG = False
    settings.METRICS_TOKEN = "scrape-secret"
    staff = django_user_model.objects.create_user(username="root", email="root@x.example", password="pw-long-enough",
                                                  is_staff=True)
    session = Client()
    session.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")

    assert Client().get("/metrics").status_code == 401
    assert Client(HTTP_AUTHORIZATION="Bearer wrong").get("/metrics").status_code == 401
    assert Client(HTTP_AUTHORIZATION="Bearer scrape-secret").get("/metrics").status_code == 200
    assert session.get("/metrics").status_code == 200


def test_each_request_logs_one_line_with_correlation_id_tenant_actor_status_and_duration(demo, api, caplog):
    with caplog.at_level(logging.INFO, logger="trustguard.request"):
        response = api("co").get("/api/v1/reports/summary", HTTP_X_REQUEST_ID="req-123")

    records = [r for r in caplog.records if r.name == "trustguard.request"]
    assert len(records) == 1
    record = records[0]
    assert response["X-Request-ID"] == "req-123"
    assert (record.request_id, record.tenant, record.status, record.method) == ("req-123", "demo", 200, "GET")
    assert record.actor.startswith("user:")
    assert record.duration_ms >= 0
    line = json.loads(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s").format(record))
    assert {"request_id", "tenant", "actor", "status", "duration_ms"} <= set(line)


def test_the_request_line_masks_an_email_in_the_path(db, caplog):
    with caplog.at_level(logging.INFO, logger="trustguard.request"):
        Client().get("/api/v1/users/jane.doe@example.com")

    record = next(r for r in caplog.records if r.name == "trustguard.request")
    assert "jane.doe@example.com" not in record.getMessage()
    assert "jane.doe@example.com" not in record.path


def test_in_multi_process_mode_metrics_add_up_every_process_s_counts(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "trustguard.settings_test"}
    script = ("import django; django.setup()\n"
              "from django.test import RequestFactory\n"
              "from trustguard import metrics\n"
              "metrics.OTP_FAILURES.labels(reason='wrong_code').inc()\n"
              "print(metrics.render_metrics(RequestFactory().get('/metrics')).content.decode())\n")

    for _ in range(2):  # two worker processes, each counting one failure
        output = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True,
                                text=True).stdout

    assert 'trustguard_otp_failures_total{reason="wrong_code"} 2.0' in output


def test_failed_deliveries_are_counted_and_a_dead_letter_shows_in_health(demo, settings,
                                                                         django_capture_on_commit_callbacks):
    from django.db import transaction

    from notifications.breakers import breaker_reset
    from notifications.deliveries.attempts import delivery_attempt
    from notifications.messages import message_send

    settings.DELIVERY_MAX_ATTEMPTS = 2
    settings.DELIVERY_BACKOFF_BASE_SECONDS = 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # nothing listens there
    breaker_reset("email:smtp")
    retries = sample("trustguard_delivery_failures_total", kind="email", outcome="retry")
    dead = sample("trustguard_delivery_failures_total", kind="email", outcome="dead_lettered")
    with transaction.atomic():
        message = message_send(tenant_id=demo["tenant_obj"].pk, channel="email", subject="s", body="b",
                               purpose="test", to_address="someone@example.com")

    try:
        with django_capture_on_commit_callbacks(execute=True):
            outcomes = [delivery_attempt(delivery_id=message.delivery.pk) for _ in range(2)]
    finally:
        breaker_reset("email:smtp")
    beat_heartbeat_write()
    deliveries = Client().get("/healthz").json()["checks"]["deliveries"]

    assert outcomes == ["retry", "dead"]
    assert (deliveries["status"], deliveries["dead_letters"]) == ("warn", 1)
    assert sample("trustguard_delivery_failures_total", kind="email", outcome="retry") == retries + 1
    assert sample("trustguard_delivery_failures_total", kind="email", outcome="dead_lettered") == dead + 1
