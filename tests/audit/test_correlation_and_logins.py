"""Correlation ids flow from the request (or the queued task) into audit rows and log lines; logins are audited."""

from __future__ import annotations

import io
import logging
import time

import pytest
from celery import shared_task
from django.db import connection, transaction
from django.test import Client

from accounts.actors import Actor
from accounts.models import Tenant, User
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from trustguard import context


def console_handler() -> logging.StreamHandler:
    """The handler settings.LOGGING configures (with the request-id and PII filters)."""
    return next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)
                and any(type(f).__name__ == "RequestIdFilter" for f in h.filters))


@pytest.mark.django_db
def test_a_correlation_id_flows_from_the_request_to_the_audit_row_and_the_log_line(demo):
    handler = console_handler()
    stream = io.StringIO()
    old_stream = handler.setStream(stream)
    try:
        response = Client().post("/admin/login/", {"username": "ops", "password": "wrong password"},
                                 HTTP_X_REQUEST_ID="req-e2e-42", HTTP_USER_AGENT="pytest-agent")
    finally:
        handler.setStream(old_stream)

    assert response["X-Request-ID"] == "req-e2e-42"
    event = AuditEvent.objects.get(action="login.failed")
    assert (event.request_id, event.user_agent, event.ip) == ("req-e2e-42", "pytest-agent", "127.0.0.1")
    assert event.tenant == demo["tenant_obj"]
    log_line = next(line for line in stream.getvalue().splitlines() if "login failed for ops" in line)
    assert "req-e2e-42" in log_line


@pytest.mark.django_db
def test_a_request_without_a_usable_id_gets_a_fresh_one_echoed_back(demo):
    response = Client().get("/api/v1/audit", HTTP_X_REQUEST_ID="bad id with spaces\n",
                            HTTP_AUTHORIZATION=f"Bearer {demo['by_name']['ops']['api_token']}")

    assert response.status_code == 200
    assert len(response["X-Request-ID"]) == 32 and " " not in response["X-Request-ID"]


@pytest.mark.django_db
def test_a_successful_login_is_audited_on_each_of_the_persons_tenants(demo):
    client = Client()
    client.force_login(User.objects.get(username="co"))

    event = AuditEvent.objects.get(action="login.succeeded")
    assert (event.tenant, event.actor_label, event.target_type) == (demo["tenant_obj"], "co", "user")


@pytest.mark.django_db
def test_a_failed_login_for_an_unknown_name_goes_to_the_platform_chain(demo):
    Client().post("/admin/login/", {"username": "mallory", "password": "guess-guess"})

    event = AuditEvent.objects.get(action="login.failed")
    assert event.tenant is None and event.chain_key == "platform"
    assert event.details == {"username": "mallory"}
    assert "guess" not in str(event.details)


@shared_task(name="tests.audit.record_in_task")
def record_in_task(tenant_id: int) -> None:
    tenant = Tenant.objects.get(pk=tenant_id)
    with transaction.atomic():
        audit_record(tenant_id=tenant_id, action=AuditAction.NOTIFICATIONS_PURGED, actor=Actor.for_system(tenant, "task"))


@pytest.mark.django_db
def test_an_eager_task_keeps_its_callers_correlation_id_and_a_task_without_one_gets_a_fresh_id(make_tenant, settings):
    acme = make_tenant("acme")
    token = context.bind(context.RequestContext(request_id="parent-req-1"))
    try:
        record_in_task.apply(args=[acme.pk])
    finally:
        context.reset(token)
    record_in_task.apply(args=[acme.pk])

    ids = list(AuditEvent.objects.filter(action=AuditAction.NOTIFICATIONS_PURGED).order_by("seq")
               .values_list("request_id", flat=True))
    assert ids[0] == "parent-req-1"
    assert len(ids[1]) == 32 and ids[1] != "parent-req-1"
    assert context.current() is None  # nothing leaks out of a task


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_task_run_by_a_real_worker_carries_the_id_of_the_request_that_queued_it(make_tenant):
    from celery.contrib.testing.worker import start_worker

    from trustguard.celery import app

    acme = make_tenant("acme")
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        token = context.bind(context.RequestContext(request_id="queued-by-req-7"))
        try:
            record_in_task.delay(acme.pk)
        finally:
            context.reset(token)
        deadline = time.monotonic() + 30  # waiting for the worker, not timing it
        while not AuditEvent.objects.filter(action=AuditAction.NOTIFICATIONS_PURGED).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    connection.close()

    assert AuditEvent.objects.get(action=AuditAction.NOTIFICATIONS_PURGED).request_id == "queued-by-req-7"


@pytest.mark.django_db
def test_too_many_failed_logins_lock_the_name_out_and_say_so_in_the_trail(demo, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client().post("/admin/login/", {"username": "co", "password": "wrong password"})

    assert AuditEvent.objects.filter(action="login.failed", actor_label="co").count() == settings.AXES_FAILURE_LIMIT
    locked = AuditEvent.objects.get(action="login.locked_out")
    assert (locked.tenant, locked.actor_label) == (demo["tenant_obj"], "co")



@pytest.mark.django_db
def test_a_periodic_job_run_outside_celery_gets_its_own_correlation_id(make_tenant):
    from trustguard.periodic import job_run

    make_tenant("acme")
    job_run("audit.verify_chains")  # anchors the chain heads on the platform chain

    anchor = AuditEvent.objects.get(action="audit.chains_anchored")
    assert len(anchor.request_id) == 32
    assert context.current() is None
