"""`PORT=<port> make run` as a newcomer runs it, on the embedded defaults: it serves on that port, /healthz says
what is still starting and then turns 200, and Ctrl-C stops web, worker and beat warm (nothing SIGKILLed)."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest
from django.db import connection

from tests.processes import ROOT, app_env, free_port, log_tail, start, stop, wait_for
from trustguard.backup.engines import sqlite_snapshot

# transaction=True: the snapshot below copies a database no transaction holds.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def healthz(base: str) -> tuple[int, dict] | None:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return None


def test_port_make_run_serves_there_turns_healthy_and_stops_warm_on_ctrl_c(tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("the newcomer's `make run` on the embedded defaults: runs in the SQLite pass")
    connection.ensure_connection()
    sqlite_snapshot(connection.connection, tmp_path / "trustguard.sqlite3")  # migrated already: a quicker start
    env = app_env(var_dir=tmp_path)
    for name in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "LOG_LEVEL"):  # as `make run` sets them up itself
        env.pop(name, None)
    port = free_port()
    log = tmp_path / "make-run.log"
    make = start(["make", "run", f"PORT={port}"], env={**env, "PORT": str(port)}, log=log, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    answers: list[tuple[int, dict]] = []
    try:
        def healthy() -> bool:
            assert make.poll() is None, log_tail(log)
            answer = healthz(base)
            if answer is not None:
                answers.append(answer)
            return answer is not None and answer[0] == 200

        wait_for(healthy, what=f"{base}/healthz 200", timeout=180)
        with urllib.request.urlopen(f"{base}/accounts/login/", timeout=5) as page:
            assert page.status == 200
        started = time.monotonic()
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C in the terminal: the foreground process group
        make.wait(60)
        stopped_in = time.monotonic() - started
    finally:
        stop(make, grace=5)

    output = log.read_text(errors="replace")
    assert f"http://127.0.0.1:{port}/healthz" in output  # the printed URLs follow PORT
    assert f"Starting development server at http://127.0.0.1:{port}/" in output
    for status, body in answers:
        assert status == 200 or (status, body["failing"]) == (503, ["beat"]), body
        if status == 503:
            assert body["checks"]["beat"]["detail"] == "no heartbeat from beat yet"
    assert "Warm shutdown" in output
    assert "SIGKILL" not in output, log_tail(log)
    assert stopped_in < 30
