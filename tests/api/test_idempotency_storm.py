"""A client's retries all at once: many concurrent POST /api/v1/escalations with one Idempotency-Key at a live,
threaded web server (a real process, as `make run` starts it) on the engine of this run. One escalation; every
other answer is its replay or 409 while it runs (CONTRACT.md section 4); never a 5xx."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.processes import app_env, web_server
from trustguard.backup.engines import sqlite_snapshot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
RETRIES_AT_ONCE = 12
ROUNDS = 5
ORDER: dict[str, Any] = {"reason": "Large order", "amount": {"value_minor": 250_000_000, "currency": "NGN"},
         "source": {"system": "shop", "entity_type": "order", "entity_id": "ORD-STORM"},
         "requested_by": "buyer@shop.example"}


def call(method: str, url: str, secret: str, body: bytes | None = None, key: str | None = None) -> tuple[int, dict, Any]:
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


@pytest.fixture(params=["embedded-default", "sqlite-database-url", "postgres"])
def server_env(request: pytest.FixtureRequest, demo: dict, tmp_path: Path) -> dict[str, str]:
    """The web server's environment, on this run's test database (where `demo` committed its rows). On SQLite
    both ways to name the file: the embedded default, and DATABASE_URL=sqlite:///..."""
    on_postgres = connection.vendor == "postgresql"
    if (request.param == "postgres") != on_postgres:
        pytest.skip(f"{request.param}: runs in the {'SQLite' if on_postgres else 'PostgreSQL'} pass")
    if on_postgres:
        url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
        redis_url = {"REDIS_URL": os.environ["REDIS_URL"]} if os.environ.get("REDIS_URL") else {}
        return app_env(var_dir=tmp_path, database_url=url, DB_CONN_MAX_AGE="0", **redis_url)
    # The suite's SQLite test database lives in memory: the server gets a copy of it as a file.
    connection.ensure_connection()
    path = tmp_path / "trustguard.sqlite3"
    sqlite_snapshot(connection.connection, path)
    return app_env(var_dir=tmp_path, database_url=f"sqlite:///{path}" if request.param == "sqlite-database-url" else None)


def storm(url: str, secret: str, body: bytes, key: str) -> list[tuple[int, dict, Any]]:
    """RETRIES_AT_ONCE requests released together by a barrier."""
    answers: list[tuple[int, dict, Any]] = []
    start = threading.Barrier(RETRIES_AT_ONCE)

    def retry() -> None:
        start.wait()
        answers.append(call("POST", url, secret, body, key=key))

    threads = [threading.Thread(target=retry) for _ in range(RETRIES_AT_ONCE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


def test_concurrent_retries_with_one_key_create_one_escalation_and_never_a_5xx(server_env, demo, tmp_path):
    secret = demo["api_keys"]["vendor"]
    with web_server(server_env, tmp_path / "web.log") as base:
        for round_ in range(ROUNDS):  # a lost race is rare in one round: several orders, each stormed
            body = json.dumps({**ORDER, "source": {**ORDER["source"], "entity_id": f"ORD-STORM-{round_}"}}).encode()
            answers = storm(f"{base}/api/v1/escalations", secret, body, key=f"storm-{round_}")
            later = call("POST", f"{base}/api/v1/escalations", secret, body, key=f"storm-{round_}")
            listed = call("GET", f"{base}/api/v1/escalations?source_entity_id=ORD-STORM-{round_}", secret)
            log = (tmp_path / "web.log").read_text(errors="replace")[-3000:]

            statuses = Counter(status for status, _, _ in answers)
            assert len(answers) == RETRIES_AT_ONCE
            assert set(statuses) <= {201, 409}, (statuses, log)
            originals = [payload for status, headers, payload in answers
                         if status == 201 and "Idempotent-Replayed" not in headers]
            replays = [payload for status, headers, payload in answers
                       if status == 201 and headers.get("Idempotent-Replayed")]
            assert len(originals) == 1, statuses
            assert all(replay == originals[0] for replay in replays)
            for status, headers, payload in answers:
                if status == 409:
                    assert headers["Content-Type"] == "application/problem+json"
                    assert payload["type"].endswith("/idempotency-request-in-progress") and headers["Retry-After"]
            assert later[0] == 201 and later[1]["Idempotent-Replayed"] == "true" and later[2] == originals[0]
            assert [e["id"] for e in listed[2]["results"]] == [originals[0]["id"]]
