"""API plumbing every app's endpoints get: idempotency keys, problem+json errors, limits, docs."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.utils import timezone

from accounts.models import PersonalToken
from escalations.models import Escalation
from tests.api.conftest import ORDER, Api, assert_problem
from tests.locking import held_elsewhere
from trustguard.api.idempotency import IdempotencyMiddleware, request_fingerprint
from trustguard.api.middleware import ApiGuardMiddleware
from trustguard.crypto import encrypt_bytes
from trustguard.models import IdempotencyKey
from trustguard.periodic import job_run

pytestmark = pytest.mark.django_db


# --- idempotency -------------------------------------------------------------------------------------

def test_a_retry_with_the_same_key_and_body_replays_the_first_response(api):
    key = str(uuid.uuid4())
    first = api("vendor").post("/escalations", ORDER, key=key)
    again = api("vendor").post("/escalations", ORDER, key=key)

    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert again.json() == first.json()
    assert Escalation.objects.count() == 1


def test_the_same_key_with_another_body_is_422(api):
    key = str(uuid.uuid4())
    api("vendor").post("/escalations", ORDER, key=key)

    response = api("vendor").post("/escalations", {**ORDER, "reason": "Something else"}, key=key)

    assert assert_problem(response, 422)["type"].endswith("idempotency-key-reused")
    assert Escalation.objects.count() == 1


def test_the_same_key_while_the_first_request_still_runs_is_409(api, demo):
    key, body = str(uuid.uuid4()), json.dumps(ORDER)
    scope = "key:" + str(demo["tenant_obj"].api_keys.get(name="vendor").pk)
    IdempotencyKey.objects.create(scope=scope, key=key, method="POST", path="/api/v1/escalations",
                                  fingerprint=request_fingerprint("POST", "/api/v1/escalations", body.encode()),
                                  created_at=timezone.now())

    response = api("vendor").post("/escalations", raw=body, key=key)

    assert_problem(response, 409)
    assert response["Retry-After"] == "1"
    assert not Escalation.objects.exists()


def test_keys_are_scoped_per_credential(api):
    key = str(uuid.uuid4())

    first = api("vendor").post("/escalations", ORDER, key=key)
    second = api("co").post("/escalations", ORDER, key=key)

    assert first.status_code == second.status_code == 201
    assert not second.has_header("Idempotent-Replayed")
    assert Escalation.objects.count() == 2


def test_a_client_error_is_stored_and_replayed_too(api):
    key = str(uuid.uuid4())
    bad = {**ORDER, "amount": {"value_minor": 1.5, "currency": "NGN"}}

    first = api("vendor").post("/escalations", bad, key=key)
    again = api("vendor").post("/escalations", bad, key=key)

    assert_problem(first, 400)
    assert_problem(again, 400)
    assert again["Idempotent-Replayed"] == "true"


def test_a_server_error_is_not_stored_so_a_retry_runs_again(demo):
    factory = RequestFactory()
    calls: list[int] = []

    def flaky_view(request):  # the first attempt fails, the retry succeeds
        calls.append(1)
        return HttpResponse(status=503 if len(calls) == 1 else 201)

    middleware = IdempotencyMiddleware(flaky_view)
    headers = {"Authorization": f"Bearer {demo['api_keys']['vendor']}", "Idempotency-Key": "retry-me"}

    first = middleware(factory.post("/api/v1/anything", data="{}", content_type="application/json", headers=headers))
    retry = middleware(factory.post("/api/v1/anything", data="{}", content_type="application/json", headers=headers))

    assert (first.status_code, retry.status_code) == (503, 201)
    assert len(calls) == 2
    assert IdempotencyKey.objects.get(key="retry-me").status_code == 201


def test_a_server_error_rolls_back_what_the_view_wrote(demo):
    def half_done_view(request):  # writes, then fails
        Escalation.objects.all().delete()
        PersonalToken.objects.all().delete()
        return HttpResponse(status=500)

    headers = {"Authorization": f"Bearer {demo['api_keys']['vendor']}", "Idempotency-Key": "half"}
    before = PersonalToken.objects.count()

    response = IdempotencyMiddleware(half_done_view)(
        RequestFactory().post("/api/v1/anything", data="{}", content_type="application/json", headers=headers))

    assert response.status_code == 500
    assert PersonalToken.objects.count() == before > 0
    assert not IdempotencyKey.objects.filter(key="half").exists()


def _claim(demo: dict, key: str, body: str, age: timedelta) -> IdempotencyKey:
    scope = "key:" + str(demo["tenant_obj"].api_keys.get(name="vendor").pk)
    return IdempotencyKey.objects.create(scope=scope, key=key, method="POST", path="/api/v1/escalations",
                                         fingerprint=request_fingerprint("POST", "/api/v1/escalations", body.encode()),
                                         created_at=timezone.now() - age)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_left_by_a_request_that_died_is_taken_over_at_once(api, demo):
    # A web server killed mid-request: its transaction rolled back, its committed claim is left unlocked.
    key, body = str(uuid.uuid4()), json.dumps(ORDER)
    _claim(demo, key, body, age=timedelta(seconds=5))

    response = api("vendor").post("/escalations", raw=body, key=key)

    assert response.status_code == 201, response.content
    assert Escalation.objects.count() == 1
    assert IdempotencyKey.objects.get(key=key).state == IdempotencyKey.State.DONE


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_whose_request_still_runs_is_409_however_long_it_runs(api, demo):
    key, body = str(uuid.uuid4()), json.dumps(ORDER)
    claim = _claim(demo, key, body, age=timedelta(seconds=30))
    # Another connection holds the claim's lock, as a request in progress does.
    with held_elsewhere(lambda: list(IdempotencyKey.objects.select_for_update().filter(pk=claim.pk))):
        response = api("vendor").post("/escalations", raw=body, key=key)

    assert_problem(response, 409)
    assert not Escalation.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_duplicate_that_committed_while_this_one_ran_wins_and_what_this_one_wrote_is_rolled_back(demo):
    # The key's row appearing under a running request (the previous release's claim, or a holder that committed
    # between this request's look-up and its lock): this request's INSERT of the key fails, its writes go.
    headers = {"Authorization": f"Bearer {demo['api_keys']['vendor']}", "Idempotency-Key": "raced"}
    scope = "key:" + str(demo["tenant_obj"].api_keys.get(name="vendor").pk)
    fingerprint = request_fingerprint("POST", "/api/v1/anything", b"{}")
    tokens = PersonalToken.objects.count()

    def racing_view(request):
        PersonalToken.objects.all().delete()

        def commit_the_other() -> None:
            try:
                IdempotencyKey.objects.create(scope=scope, key="raced", fingerprint=fingerprint, method="POST",
                                              path="/api/v1/anything", state=IdempotencyKey.State.DONE,
                                              status_code=202, response_body=encrypt_bytes(b"first"),
                                              created_at=timezone.now())
            finally:
                connection.close()

        other = threading.Thread(target=commit_the_other)
        other.start()
        other.join(10)
        return HttpResponse(b"second", status=201)

    response = IdempotencyMiddleware(racing_view)(
        RequestFactory().post("/api/v1/anything", data="{}", content_type="application/json", headers=headers))

    assert (response.status_code, response.content, response["Idempotent-Replayed"]) == (202, b"first", "true")
    assert PersonalToken.objects.count() == tokens > 0


def test_a_key_works_on_any_write_not_only_create(api):
    escalation = api("vendor").post("/escalations", ORDER, key=str(uuid.uuid4())).json()
    key = str(uuid.uuid4())

    first = api("ceo").post(f"/escalations/{escalation['id']}/acknowledge", key=key)
    again = api("ceo").post(f"/escalations/{escalation['id']}/acknowledge", key=key)

    assert first.status_code == again.status_code == 200  # without the key, the second would be 409
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("key", ["x" * 256, "has space", "ключ"])
def test_a_malformed_key_is_400(api, key):
    assert_problem(api("vendor").post("/escalations", ORDER, key=key), 400)


def test_a_key_of_255_characters_is_accepted(api):
    assert api("vendor").post("/escalations", ORDER, key="k" * 255).status_code == 201


def test_the_purge_job_forgets_keys_older_than_a_day():
    now = timezone.now()
    old = IdempotencyKey.objects.create(scope="key:1", key="old", fingerprint="f", method="POST", path="/",
                                        created_at=now - timedelta(hours=25))
    fresh = IdempotencyKey.objects.create(scope="key:1", key="fresh", fingerprint="f", method="POST", path="/",
                                          created_at=now - timedelta(hours=23))

    summary = job_run("api.purge_idempotency_keys")

    assert summary == "purged 1 idempotency keys"
    assert not IdempotencyKey.objects.filter(pk=old.pk).exists()
    assert IdempotencyKey.objects.filter(pk=fresh.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_have_exactly_one_side_effect(api):
    clients = [api("vendor") for _ in range(6)]
    key, barrier = str(uuid.uuid4()), threading.Barrier(6)
    results: list[tuple[int, bool]] = []

    def send(client: Api) -> None:
        try:
            barrier.wait(timeout=10)
            response = client.post("/escalations", ORDER, key=key)
            results.append((response.status_code, response.has_header("Idempotent-Replayed")))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert len(results) == 6
    assert Escalation.objects.count() == 1
    assert [r for r in results if r == (201, False)] == [(201, False)]
    assert {status for status, _ in results} <= {201, 409}


# --- errors are problem+json ----------------------------------------------------------------------------

def test_malformed_json_is_a_400_problem(api):
    assert_problem(api("vendor").post("/escalations/check", raw="{not json"), 400)


@pytest.mark.parametrize("raw", [
    '{"payload": {"a": "nul\\u0000"}}',
    '{"payload": {"a": "\\ud800"}}',
    '{"payload": {"a": 1e999}}',
    '{"payload": ' + "[" * 5000 + "]" * 5000 + "}",
])
def test_json_that_cannot_be_stored_is_a_400_problem(api, raw):
    assert_problem(api("vendor").post("/escalations/check", raw=raw), 400)


def test_a_body_over_the_limit_is_a_413_problem(api, settings):
    raw = json.dumps({"payload": {"x": "a" * (settings.MAX_REQUEST_BODY_BYTES + 1)}})

    assert_problem(api("vendor").post("/escalations/check", raw=raw), 413)


def test_an_unknown_api_url_is_a_404_problem_not_html(api):
    assert_problem(api("vendor").get("/no/such/endpoint"), 404)


def test_a_wrong_method_is_a_405_problem(api):
    assert_problem(api("vendor").send("delete", "/escalations"), 405)


def test_a_non_json_body_is_a_415_problem(api):
    assert_problem(api("vendor").post("/escalations/check", raw="a=1", content_type="application/x-www-form-urlencoded"),
                   415)


def test_a_nul_in_the_query_string_is_a_400_problem_naming_the_parameter(api):
    assert "type" in assert_problem(api("ceo").get("/escalations", {"type": "A\x00B"}), 400)["errors"]


def test_a_bug_in_a_view_is_logged_and_answered_as_a_500_problem(caplog):
    request = RequestFactory().get("/api/v1/escalations")
    guard = ApiGuardMiddleware(lambda r: None)  # type: ignore[arg-type, return-value]

    response = guard.process_exception(request, ZeroDivisionError("boom"))

    assert response is not None and response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert "unhandled error" in caplog.text


# --- rate limit ---------------------------------------------------------------------------------------------

@override_settings(RATE_LIMIT_PER_MINUTE=2)
def test_past_the_rate_limit_a_credential_gets_429_with_retry_after(api, demo):
    client = api("ceo")

    statuses = [client.get("/escalations").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    response = client.get("/escalations")
    assert_problem(response, 429)
    assert int(response["Retry-After"]) >= 1
    assert api("sm").get("/escalations").status_code == 200  # another credential is not affected


@override_settings(RATE_LIMIT_PER_MINUTE=0)
def test_a_rate_limit_of_zero_turns_limiting_off(api):
    client = api("ceo")

    assert {client.get("/escalations").status_code for _ in range(5)} == {200}


# --- schema and docs ------------------------------------------------------------------------------------------

def test_the_schema_is_public_and_documents_bearer_auth_idempotency_and_problems(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"]}
    create = schema["paths"]["/api/v1/escalations"]["post"]
    header = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert header["required"] is True
    assert "application/problem+json" in create["responses"]["400"]["content"]
    assert create["requestBody"]["content"]["application/json"]["examples"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "401" in operation["responses"], (method, path)


def test_the_docs_page_renders_with_local_assets(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn" not in html.lower()


def test_a_post_to_the_schema_is_a_405_problem_with_or_without_the_slash(client):
    for path in ("/api/schema/", "/api/schema"):
        assert_problem(client.post(path), 405)


def test_a_string_longer_than_its_schema_allows_is_refused_even_when_trimming_would_shorten_it(api):
    """The schema's maxLength is of what was sent: DRF trims first, and Python's strip() also takes \\x1d."""
    too_long = "\r\x1d" + "*" * 199  # 201 characters; 199 after the trim

    subject = api("ops").post("/subjects/erase", {"entity_id": too_long}, key=str(uuid.uuid4()))
    order = api("vendor").post("/escalations", {**ORDER, "reason": "\x1d" + "r" * 5000}, key=str(uuid.uuid4()))

    assert "entity_id" in assert_problem(subject, 400)["errors"]
    assert "reason" in assert_problem(order, 400)["errors"]
