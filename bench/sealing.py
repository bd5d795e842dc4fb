"""Bench 7: one tenant's creates with 1, 2 and 4 gunicorn workers, the audit chain sealed in the request (the former
design, TRUSTGUARD_AUDIT_SEAL_INLINE=1: every create of the tenant locks its chain head until commit) against events
written unsealed and sealed afterwards by one sealer (audit.sealing), in the same run.

For each worker count both servers run side by side and their rounds are interleaved (former, sealer, former, ...),
each round sampled by the pg_stat_activity lock sampler of bench 1. During the sealer's rounds a thread of this process
seals every 0.5 s, as beat's audit.seal_pending does every AUDIT_SEAL_INTERVAL_SECONDS, and the largest backlog age
seen is reported (the sealing lag). Goal: no backend ever waits on a tenant-wide lock with the sealer, and the
create rate rises with the workers where the former design plateaus (the machine's cores bound both: read the
scaling next to the load average printed with it).
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from typing import Any

from .common import Result
from .create import creator
from .http import Load, LockWaits, gunicorn, load, load_note, lock_waits, spread

BENCH = "7 audit sealing"
CONCURRENCY = 16
WORKERS = (1, 2, 4)
QUICK_WORKERS = (2,)  # --quick (make test's smoke run): two servers to start, not six
DESIGNS = {"former (chain head locked in the request)": "1", "sealer (unsealed, sealed after)": "0"}
SEAL_EVERY = 0.5


@contextmanager
def sealer_running(lags: list[float], sealed: list[int], cpu: list[float]) -> Any:
    """A sealer thread (what beat's job does), sealing every SEAL_EVERY s; records the oldest unsealed age it saw."""
    from django.db import connection

    from audit.sealing import audit_seal_pending, sealing_lag

    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.is_set():
                lags.append(float(sealing_lag()["oldest_age_seconds"]))
                started = time.thread_time()
                sealed.append(audit_seal_pending().sealed)
                cpu.append(time.thread_time() - started)
                stop.wait(SEAL_EVERY)
            sealed.append(audit_seal_pending().sealed)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def measure(api_key: str, *, worker_counts: tuple[int, ...], rounds: int,
            seconds: float) -> dict[tuple[str, int], list[tuple[Load, LockWaits]]]:
    runs: dict[tuple[str, int], list[tuple[Load, LockWaits]]] = {}
    factory = creator([api_key])
    for workers in worker_counts:
        with ExitStack() as stack:
            servers = {name: stack.enter_context(gunicorn(WEB_CONCURRENCY=str(workers), TRUSTGUARD_AUDIT_SEAL_INLINE=flag))
                       for name, flag in DESIGNS.items()}
            for server in servers.values():  # warm every worker
                load(server, factory, concurrency=CONCURRENCY, seconds=min(1.0, seconds / 2)).require({201})
            for _ in range(rounds):
                for name, server in servers.items():
                    with lock_waits() as waits:
                        run = load(server, factory, concurrency=CONCURRENCY, seconds=seconds).require({201})
                    runs.setdefault((name, workers), []).append((run, waits))
    return runs


def rows(runs: dict[tuple[str, int], list[tuple[Load, LockWaits]]], lags: list[float], sealed: int,
         sealer_cpu: float, worker_counts: tuple[int, ...]) -> list[Result]:
    out = [Result(BENCH, "clients (closed loop), one vendor key of one tenant", CONCURRENCY, "",
                  notes=[f"workers {', '.join(map(str, worker_counts))} x 4 threads (gunicorn.conf.py)", load_note()])]
    median_rps: dict[tuple[str, int], float] = {}
    for (name, workers), pairs in runs.items():
        rps = [run.rps for run, _ in pairs]
        median_rps[(name, workers)] = statistics.median(rps)
        waits = [w for _, w in pairs]
        tenant_wide = max((max(w.tenant_wide, default=0) for w in waits), default=0)
        mean_wide = statistics.fmean(n for w in waits for n in w.tenant_wide) if any(w.samples for w in waits) else 0
        out.append(Result(BENCH, f"{name}, {workers} workers: creates/s, median (min-max) of {len(rps)} rounds",
                          median_rps[(name, workers)], "/s", display=spread(rps) + " /s",
                          notes=[f"waiting on a tenant-wide lock: max {tenant_wide}, mean {mean_wide:.2f} backends",
                                 waits[-1].summary()]))
    for name in DESIGNS:
        base = median_rps[(name, worker_counts[0])]
        scaling = [f"{w}: {median_rps[(name, w)] / base:.2f}x" for w in worker_counts]
        out.append(Result(BENCH, f"{name}: creates/s vs {worker_counts[0]} worker",
                          median_rps[(name, worker_counts[-1])] / base,
                          "x", notes=[", ".join(scaling)]))
    former, sealer = DESIGNS
    for workers in worker_counts:
        ratios = [s.rps / f.rps for (s, _), (f, _) in zip(runs[(sealer, workers)], runs[(former, workers)], strict=True)]
        out.append(Result(BENCH, f"sealer / former, {workers} workers (round by round)", statistics.median(ratios),
                          "x", display=spread(ratios, "{:.2f}") + " x"))
    wide = max(max(w.tenant_wide, default=0) for (name, _), pairs in runs.items() if name == sealer for _, w in pairs)
    sampled = any(w.samples for (name, _), pairs in runs.items() if name == sealer for _, w in pairs)
    out.append(Result(BENCH, "one tenant, sealer: backends waiting on a tenant-wide lock (max over samples)", wide, "",
                      "0", sampled and wide == 0, notes=["every sample of every sealer round, all worker counts"]))
    out.append(Result(BENCH, "sealing lag: oldest unsealed event seen by the sealer (max)", max(lags, default=0.0), "s",
                      notes=[f"sealer every {SEAL_EVERY} s in this process; {sealed:,} events sealed, "
                             f"{sealer_cpu / max(sealed, 1) * 1e6:.0f} us of sealer CPU per event"]))
    return out


def run(quick: bool) -> tuple[list[Result], dict[str, str]]:
    from escalations.demo import seed_demo

    api_key = seed_demo(f"bench-seal-{uuid.uuid4().hex[:6]}")["api_keys"]["vendor"]
    rounds, seconds = 3, (1.0 if quick else 4.0)
    worker_counts = QUICK_WORKERS if quick else WORKERS
    lags: list[float] = []
    sealed: list[int] = []
    cpu: list[float] = []
    with sealer_running(lags, sealed, cpu):
        runs = measure(api_key, worker_counts=worker_counts, rounds=rounds, seconds=seconds)
    return rows(runs, lags, sum(sealed), sum(cpu), worker_counts), {}
