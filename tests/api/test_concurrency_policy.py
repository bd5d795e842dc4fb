"""The concurrency policy (docs/CONCURRENCY.md): concurrent writes never answer 5xx.

Real threads on PostgreSQL: configuration writes of one tenant at once, a real deadlock resolved by
re-running the whole request transaction, and a collision that persists answered 409 `concurrent-write`.
"""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse
from django.test import Client, RequestFactory

from accounts.models import Tenant
from escalations.models import Policy
from notifications.deliveries.webhooks import webhook_endpoint_create
from tests.approvals.test_concurrency import run_at_once
from trustguard.api.concurrency import ATTEMPTS, CONFLICT_SLUG, collision, in_request_transaction, is_conflict
from trustguard.api.errors import problem_exception_handler
from trustguard.locks import for_update

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DEADLOCK_SQL = "DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = 'deadlock_detected'; END $$"


def _client_call(method: str, path: str, token: str, body: dict | None = None):
    def call():
        response = getattr(Client(), method)(path, data=json.dumps(body) if body is not None else "",
                                             content_type="application/json",
                                             headers={"Authorization": f"Bearer {token}"})
        return response.status_code, response.content
    return call


def test_a_lock_takes_the_rows_of_its_own_table_only():
    with transaction.atomic():
        sql = str(for_update(Policy.objects.filter(tenant_id=1, type="HIGH_VALUE")).query)
    # Policy is ordered by tenant (a join on accounts_tenant): the lock must not reach the tenant row.
    assert 'FOR UPDATE OF "escalations_policy"' in sql


def test_thirty_policy_edits_secret_rotations_and_creates_of_one_tenant_at_once_all_succeed(demo, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.RATE_LIMIT_PER_MINUTE = 0
    ops = demo["by_name"]["ops"]["api_token"]
    vendor = demo["api_keys"]["vendor"]
    tenant = demo["tenant_obj"]
    endpoint, _ = webhook_endpoint_create(tenant_id=tenant.pk, actor=_system(tenant), url="http://127.0.0.1:9/hook")
    jobs = []
    for i in range(10):
        jobs.append(_client_call("put", "/api/v1/policies/OPERATION_CHANGE", ops, {"expiry_seconds": 3600 + i}))
        jobs.append(_client_call("post", f"/api/v1/webhooks/{endpoint.pk}/rotate-secret", ops))
        jobs.append(_client_call("put", f"/api/v1/policies/NEW_TYPE_{i % 2}", ops, {"route": ["ceo"]}))
    for i in range(10):  # escalation creates write the same audit chain and tenant
        jobs.append(lambda i=i: _create(vendor, i))

    results = run_at_once(jobs)

    statuses = Counter(r[0] if isinstance(r, tuple) else repr(r) for r in results)
    assert set(statuses) <= {200, 201}, statuses
    assert Policy.objects.get(tenant=tenant, type="OPERATION_CHANGE").version >= 11
    assert Policy.objects.filter(tenant=tenant, type__startswith="NEW_TYPE_").count() == 2


def test_a_real_deadlock_is_resolved_by_running_the_losing_request_again():
    first, second = Tenant.objects.create(slug="first", name="First"), Tenant.objects.create(slug="second", name="Second")
    barrier = threading.Barrier(2)
    attempts: Counter[str] = Counter()

    def view(order: tuple[int, int], name: str):
        def get_response(request):
            attempts[name] += 1
            list(Tenant.objects.select_for_update().filter(pk=order[0]))
            if attempts[name] == 1:
                barrier.wait(timeout=10)  # both hold their first row: the second lock closes the cycle
            list(Tenant.objects.select_for_update().filter(pk=order[1]))
            Tenant.objects.filter(pk=order[1]).update(name=f"by {name}")
            return HttpResponse("ok")
        return get_response

    def request(order, name):
        return lambda: in_request_transaction(RequestFactory().post("/api/v1/x", data={}, content_type="application/json"),
                                              view(order, name)).status_code

    results = run_at_once([request((first.pk, second.pk), "a"), request((second.pk, first.pk), "b")])

    assert results == [200, 200]
    assert sorted(attempts.values()) == [1, 2]  # PostgreSQL chose one victim; it ran once more, whole


def test_what_a_colliding_attempt_wrote_is_rolled_back_before_the_request_runs_again():
    calls = []

    def get_response(request):
        calls.append(1)
        Tenant.objects.create(slug=f"attempt-{len(calls)}", name="Attempt")
        if len(calls) == 1:
            with connection.cursor() as cursor:
                cursor.execute(DEADLOCK_SQL)
        return HttpResponse("ok")

    response = in_request_transaction(RequestFactory().put("/api/v1/x", data="{}", content_type="application/json"),
                                      get_response)

    assert response.status_code == 200
    assert list(Tenant.objects.filter(slug__startswith="attempt-").values_list("slug", flat=True)) == ["attempt-2"]


def test_a_collision_that_persists_is_a_409_concurrent_write_problem_telling_the_client_to_retry():
    calls = []

    def get_response(request):
        calls.append(1)
        with connection.cursor() as cursor:
            cursor.execute(DEADLOCK_SQL)
        return HttpResponse("never")

    response = in_request_transaction(RequestFactory().delete("/api/v1/x"), get_response)

    assert len(calls) == ATTEMPTS
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "1"
    assert json.loads(response.content)["type"].endswith("/" + CONFLICT_SLUG)


def test_the_api_exception_handler_answers_a_collision_409_and_marks_it_for_the_retry():
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(DEADLOCK_SQL)
    except DatabaseError as exc:
        error = exc
    assert collision(error) == "deadlock"

    response = problem_exception_handler(error, {})

    assert response is not None and response.status_code == 409 and is_conflict(response)
    assert response.data["type"].endswith("/" + CONFLICT_SLUG)


def test_an_ordinary_database_error_is_not_taken_for_a_collision():
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1/0")
    except DatabaseError as exc:
        error = exc
    assert collision(error) is None


def _system(tenant):
    from accounts.actors import Actor

    return Actor.for_system(tenant, "test")


def _create(vendor: str, i: int):
    response = Client().post("/api/v1/escalations", data=json.dumps({
        "type": "SMR", "reason": "Suspicious", "source": {"system": "bank", "entity_type": "txn", "entity_id": f"T{i}"}}),
        content_type="application/json", headers={"Authorization": f"Bearer {vendor}", "Idempotency-Key": f"k-{i}"})
    return response.status_code, response.content
