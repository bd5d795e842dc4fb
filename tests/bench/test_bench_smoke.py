"""`python -m bench --quick` runs every benchmark end to end (a smoke run: figures are not judged here,
only that each bench still runs against the code and prints its rows; speed lives in bench/).

Opt-in (BENCH_SMOKE=1): the six quick benches start gunicorn and a Celery worker and took longer than
the suite's per-test budget on the shared CI machine; until they are trimmed they are not part of
`make test`. Run it with `BENCH_SMOKE=1 make test` or `make bench BENCH_ARGS=--quick`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bench.__main__ import BENCHES

ROOT = Path(__file__).resolve().parents[2]


def scratch_urls() -> tuple[str, str]:
    """A database of its own next to the test database (the benches truncate tables), and another Redis db."""
    database = urlsplit(os.environ["DATABASE_URL"])
    name = database.path.lstrip("/") or "trustguard"
    redis = urlsplit(os.environ["REDIS_URL"])
    index = int(redis.path.lstrip("/") or 0)
    return (urlunsplit(database._replace(path=f"/{name}_bench_smoke")),
            urlunsplit(redis._replace(path=f"/{(index + 1) % 16}")))


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.skipif(os.environ.get("BENCH_SMOKE") != "1", reason="opt-in: BENCH_SMOKE=1 (runs all six benches)")
@pytest.mark.timeout(900)
def test_every_benchmark_runs_in_quick_mode() -> None:
    database_url, redis_url = scratch_urls()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=840)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    benches = {line.split("|")[1].strip().split(" ")[0] for line in table[2:]}
    assert benches == set(BENCHES), result.stdout[-3000:]
    assert "MISSED" in result.stdout or "met" in result.stdout  # every bench judges against its goal
