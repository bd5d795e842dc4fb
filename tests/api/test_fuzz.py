"""Schemathesis against the live OpenAPI schema: no 5xx, no response outside the schema, no invalid input accepted.

Runs every operation with generated valid and invalid requests (bounded examples), as the demo
vendor (API key), a demo approver and the demo operator (personal tokens), through the Django WSGI app in-process:
the cheap part of the zero-5xx batteries, in `make test` on either engine (SQLite by default). The live,
concurrent, 5,000-request part is tests/batteries (.ci/batteries, docs/CONCURRENCY.md).
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks

# Loaded at collection: the schema view touches no database. (schemathesis.pytest.from_fixture would be
# the lazy way, but 4.32 reads pytest's removed Node._nodeid and fails under pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.missing_required_header,
]
FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def _in_process_wsgi(settings):
    """Like Django's test client: keep the test's connection (and transaction) across WSGI requests."""
    settings.RATE_LIMIT_PER_MINUTE = settings.AUTH_RATE_LIMIT_PER_MINUTE = 0  # the fuzzer sends hundreds a minute
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@FUZZ
@pytest.mark.django_db
def test_api_as_the_demo_vendor(case, demo):
    case.call_and_validate(headers={"Authorization": f"Bearer {demo['api_keys']['vendor']}"}, checks=CHECKS)


@schema.parametrize()
@FUZZ
@pytest.mark.django_db
def test_api_as_a_demo_approver(case, demo):
    case.call_and_validate(headers={"Authorization": f"Bearer {demo['by_name']['ceo']['api_token']}"}, checks=CHECKS)


@schema.parametrize()
@FUZZ
@pytest.mark.django_db
def test_api_as_the_demo_operator(case, demo):
    case.call_and_validate(headers={"Authorization": f"Bearer {demo['by_name']['ops']['api_token']}"}, checks=CHECKS)
