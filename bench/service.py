"""Service-level comparisons (benches 1 and 2): our service against django-viewflow's, in this process, no HTTP.

Each side is called `per_round` times per round, the sides taking turns round by round; per call we take the
wall time and this process's CPU time (time.process_time: Python, Django and the driver; PostgreSQL's and
Redis's own CPU are in other processes and not counted, on either side). Every call gets fresh data (its own
escalation / process), prepared before the clock starts.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

from .common import Result
from .http import spread

Call = Callable[[int], object]


def interleaved_calls(sides: dict[str, Call], *, rounds: int, per_round: int) -> dict[str, list[tuple[float, float]]]:
    """{side: [(wall ms per call, CPU ms per call) per round]}; call i of round r gets index r * per_round + i."""
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for r in range(rounds):
        for name, call in sides.items():
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(per_round):
                call(r * per_round + i)
            out[name].append(((time.perf_counter() - wall) * 1000 / per_round,
                              (time.process_time() - cpu) * 1000 / per_round))
    return out


def service_rows(bench: str, what: str, ours: str, theirs: str, runs: dict[str, list[tuple[float, float]]],
                 per_round: int) -> list[Result]:
    rows = []
    for name in (ours, theirs):
        walls, cpus = [w for w, _ in runs[name]], [c for _, c in runs[name]]
        rows.append(Result(bench, f"{name}: CPU / wall per call, median (min-max) of {len(cpus)} rounds",
                           statistics.median(cpus), "ms",
                           display=f"{spread(cpus, '{:.2f}')} / {spread(walls, '{:.2f}')} ms",
                           notes=[f"{per_round} calls per round"]))
    ratios = [o[1] / t[1] for o, t in zip(runs[ours], runs[theirs], strict=True)]
    median = statistics.median(ratios)
    rows.append(Result(bench, f"{what}: service CPU, ours / viewflow", median, "x", "<= 1.0x", median <= 1.0,
                       display=spread(ratios, "{:.2f}") + " x", notes=["median (min-max) of the rounds' ratios"]))
    return rows


def count_statements(call: Callable[[], object]) -> int:
    """The SQL statements one call sends (Django's CaptureQueriesContext: COPY is not counted)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries.captured_queries)
