"""Rules that hold for every operation of the schema at once (docs/CONCURRENCY.md), on either engine.

Non-object bodies, undocumented query parameters and values outside the documented ones are 400 problems
on every view; the schema is generated once even when the first requests come together.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from django.test import Client

from trustguard.api import schema as api_schema_module
from trustguard.api.schema import api_schema

PROBLEM = "application/problem+json"


def operations(with_body: bool | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in api_schema()["paths"].items() for method, op in ops.items()
            if path.startswith("/api/v1/") and method in {"get", "post", "put", "patch", "delete"}
            and (with_body is None or ("requestBody" in op) == with_body)]


def concrete(path: str) -> str:
    return path.replace("{policy_type}", "HIGH_VALUE").replace("{dataset}", "escalations").replace("{fmt}", "csv") \
        .format_map(_AnyId())


class _AnyId(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return str(uuid.uuid4())


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["null", "[]", '[{"reason": "x"}]', '"text"', "42", "true"])
def test_a_body_that_is_not_a_json_object_is_a_400_problem_on_every_operation_that_takes_one(demo, body):
    client = Client()
    for method, path, _ in operations(with_body=True):
        answers = []
        for who in (demo["api_keys"]["vendor"], demo["by_name"]["ops"]["api_token"]):
            response = getattr(client, method)(concrete(path), data=body, content_type="application/json",
                                               headers={"Authorization": f"Bearer {who}", "Idempotency-Key": str(uuid.uuid4())})
            assert response.status_code < 500 and response["Content-Type"] == PROBLEM, (method, path, response.content)
            answers.append(response.status_code)
        assert 400 in answers, (method, path, answers)  # said by a credential allowed to call it


@pytest.mark.django_db
def test_posting_an_export_job_with_a_null_body_is_a_400_naming_the_body(demo):
    response = Client().post("/api/v1/exports", data="null", content_type="application/json",
                             headers={"Authorization": f"Bearer {demo['by_name']['ops']['api_token']}"})

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert "JSON object" in response.json()["errors"]["_"][0]


@pytest.mark.django_db
def test_an_undocumented_query_parameter_is_a_400_naming_it_on_every_operation(demo):
    client = Client()
    token = demo["by_name"]["ops"]["api_token"]
    for method, path, _ in operations():
        response = getattr(client, method)(concrete(path) + "?stauts=pending", content_type="application/json",
                                           headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 400, (method, path, response.content)
        assert response.json()["errors"] == {"stauts": ["Unknown query parameter."]}, (method, path)


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "name", "value"), [
    ("/api/v1/escalations", "status", "bogus"),
    ("/api/v1/escalations", "risk_level", " high"),
    ("/api/v1/audit", "actor_type", " user"),
    ("/api/v1/notifications", "unread", "maybe"),
])
def test_a_query_value_outside_what_the_schema_documents_is_refused(demo, path, name, value):
    response = Client().get(path, {name: value}, headers={"Authorization": f"Bearer {demo['by_name']['co']['api_token']}"})

    assert response.status_code == 400
    assert name in response.json()["errors"]


@pytest.mark.django_db
def test_documented_query_parameters_still_work(demo):
    response = Client().get("/api/v1/escalations", {"status": "pending", "mine": "1", "limit": "5", "type": ""},
                            headers={"Authorization": f"Bearer {demo['by_name']['ceo']['api_token']}"})

    assert response.status_code == 200, response.content


def test_the_schema_is_generated_once_when_the_first_requests_come_together():
    api_schema_module._schemas.clear()
    barrier = threading.Barrier(12)
    documents: list[Any] = []

    def first_request() -> None:
        barrier.wait(timeout=30)
        documents.append(api_schema())

    threads = [threading.Thread(target=first_request) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(documents) == 12
    assert len({id(document) for document in documents}) == 1


def test_the_schema_view_serves_the_generated_document():
    response = Client().get("/api/schema/?format=json")

    assert response.status_code == 200
    assert json.loads(response.content)["paths"] == api_schema()["paths"]


def test_sqlite_busy_past_its_timeout_counts_as_a_collision_and_other_errors_do_not():
    from django.db import OperationalError, ProgrammingError

    from trustguard.api.concurrency import collision

    assert collision(OperationalError("database is locked")) == "database locked"
    assert collision(ProgrammingError("no such table: x")) is None
    assert collision(ValueError("database is locked")) is None
