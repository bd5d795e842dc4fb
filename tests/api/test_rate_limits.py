"""Rate limits that hold under bursts (issue #27): per credential, and per address for failed authentication.

The burst tests start a real gunicorn (2 processes x 8 threads) and send 200 requests at once with one
credential at TRUSTGUARD_RATE_LIMIT=60: exactly 60 are admitted, on the embedded default (a SQLite file, the
database counter) and on PostgreSQL with Redis (the Lua counter).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import Client, override_settings

from escalations.demo import seed_demo
from trustguard.api import throttling

ROOT = Path(__file__).resolve().parents[2]


def get(secret: str | None, address: str = "10.0.0.1") -> Any:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return Client(REMOTE_ADDR=address).get("/api/v1/escalations", headers=headers)


# --- failed authentication, per address ------------------------------------------------------------------------

@pytest.mark.django_db
@override_settings(AUTH_RATE_LIMIT_PER_MINUTE=3)
def test_guessed_tokens_from_one_address_are_refused_after_the_limit_even_a_right_one(demo):
    statuses = [get(f"guess-{n}").status_code for n in range(3)]
    refused = get("guess-4")
    right_but_from_the_guessing_address = get(demo["api_keys"]["vendor"])

    assert statuses == [401, 401, 401]
    assert refused.status_code == 429 and refused["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert right_but_from_the_guessing_address.status_code == 429
    assert get("guess-5", address="10.0.0.2").status_code == 401  # another address is not affected
    assert get(demo["api_keys"]["vendor"], address="10.0.0.2").status_code == 200


@pytest.mark.django_db
@override_settings(AUTH_RATE_LIMIT_PER_MINUTE=2, BEHIND_PROXY=True, PROXY_CLIENT_IP_HEADER="X-Real-IP")
def test_behind_a_proxy_the_address_is_the_one_the_proxy_reports_in_the_configured_header(demo):
    def anonymous(real_ip: str) -> int:
        return Client(REMOTE_ADDR="10.9.9.9", HTTP_X_REAL_IP=real_ip).get("/api/v1/escalations").status_code

    assert [anonymous("203.0.113.7") for _ in range(3)] == [401, 401, 429]
    assert anonymous("203.0.113.8") == 401


@pytest.mark.django_db
@override_settings(RATE_LIMIT_PER_MINUTE=2, REDIS_URL="redis://127.0.0.1:1/0")
def test_with_the_counter_store_unreachable_requests_are_admitted_and_a_warning_is_logged(demo, caplog):
    throttling._warned["at"] = 0.0
    with caplog.at_level(logging.WARNING, logger="trustguard.api.throttling"):
        statuses = [get(demo["api_keys"]["vendor"]).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 200]  # fail open (documented), never a 500
    assert "rate limiter unavailable" in caplog.text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(REDIS_URL=None)
def test_the_database_counter_admits_exactly_the_limit_to_concurrent_threads_on_postgresql():
    admitted: list[bool] = []
    start = threading.Barrier(10)

    def burst() -> None:
        try:
            start.wait(timeout=30)
            for _ in range(10):
                admitted.append(throttling.hit("cred:threads", 60)[0])
        finally:
            connection.close()

    threads = [threading.Thread(target=burst) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(admitted) == 100 and admitted.count(True) == 60


# --- a burst against a live server ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "trustguard.wsgi"],
                               cwd=ROOT, env={**env, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2",
                                              "GUNICORN_THREADS": "8"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/api/schema/", timeout=2)
            return process, url
        except httpx.TransportError:
            if process.poll() is not None:
                raise RuntimeError("the server exited at start-up") from None
            time.sleep(0.3)
    process.terminate()
    raise RuntimeError("the server did not start")


def burst(url: str, secret: str, n: int = 200) -> list[httpx.Response]:
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=50)) as client, ThreadPoolExecutor(50) as pool:
        return list(pool.map(lambda _: client.get(url + "/api/v1/escalations",
                                                  headers={"Authorization": f"Bearer {secret}"}), range(n)))


def assert_exactly_the_limit_admitted(responses: list[httpx.Response]) -> None:
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 60, statuses
    assert statuses.count(429) == 140
    assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in responses if r.status_code == 429)


def server_env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DATABASE_URL", "REDIS_URL"))}
    return {**base, "DJANGO_SETTINGS_MODULE": "trustguard.settings_test", "DEBUG": "0", "TRUSTGUARD_RATE_LIMIT": "60",
            "LOG_LEVEL": "WARNING", "DB_CONN_MAX_AGE": "0", **extra}


@pytest.mark.slow
def test_a_burst_of_200_concurrent_requests_admits_exactly_60_on_the_embedded_default(tmp_path):
    env = server_env(TRUSTGUARD_VAR_DIR=str(tmp_path / "var"))
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    seeded = subprocess.run([*manage, "seed_demo", "--json"], cwd=ROOT, env=env, check=True, timeout=300,
                            capture_output=True, text=True)
    vendor = json.loads(seeded.stdout)["api_keys"]["vendor"]
    process, url = serve(env)
    try:
        assert_exactly_the_limit_admitted(burst(url, vendor))
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_200_concurrent_requests_admits_exactly_60_on_postgresql_with_redis():
    vendor = seed_demo("demo")["api_keys"]["vendor"]
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    process, url = serve(server_env(DATABASE_URL=database_url, REDIS_URL=os.environ["REDIS_URL"]))
    try:
        assert_exactly_the_limit_admitted(burst(url, vendor))
    finally:
        process.terminate()
        process.wait(timeout=30)
