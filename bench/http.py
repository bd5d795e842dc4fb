"""HTTP plumbing for benches 1, 2 and 6: gunicorn with the production config, and a load generator.

The server is `gunicorn -c gunicorn.conf.py trustguard.wsgi` with bench.settings (production settings
plus the bare baseline views), on a free loopback port, against the bench's PostgreSQL and Redis.

The load generator is closed-loop: `concurrency` clients, each on its own keep-alive connection,
send a request, wait for the answer, send the next. Clients run as threads spread over forked
processes (so one client process's GIL does not become the bottleneck) and start together.
A request is built by `make_request(client, seq)`, so every request can carry its own idempotency
key, escalation or one-time code.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import Result, latency_result, percentile

ROOT = Path(__file__).resolve().parent.parent
Request = tuple[str, str, dict[str, str], bytes | None]  # method, path, headers, body
RequestFactory = Callable[[int, int], Request]


# The throttle at a production-like setting: README's default is 600 requests a minute per credential, which
# the bench's single vendor key would exceed in its first second (16 clients, ~100+ creates/s); a bank's vendor
# integration runs with a raised limit. The counter is one Redis INCR per request (trustguard.api.throttling),
# so its cost does not depend on the limit; 60,000/min (1,000/s) is a real limit a burst could reach.
RATE_LIMIT = 60_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    log: Path
    pid: int = 0

    def cpu_seconds(self) -> float:
        """CPU (user + system) used so far by gunicorn's master and its live workers, from /proc."""
        return sum(_proc_cpu(pid) for pid in (self.pid, *_children(self.pid)))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def gunicorn(**env: str) -> Iterator[Server]:
    """Start gunicorn (the repository's gunicorn.conf.py) and wait until it answers; stop it after."""
    from django.db import connections

    connections.close_all()  # the workers open their own; nothing shared across fork
    port = free_port()
    log = ROOT / "var" / "bench" / "gunicorn.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "GUNICORN_BIND": f"127.0.0.1:{port}",
                 "TRUSTGUARD_RATE_LIMIT": str(RATE_LIMIT), **env}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "trustguard.wsgi"],
            cwd=ROOT, env=child_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {process.returncode}; see {log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/bench/bare-json")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer within 60 s; see {log}")
            time.sleep(0.2)
        yield Server(port=port, log=log, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Load:
    """What a load run measured: latencies of successful requests (ms), status counts, wall time."""

    latencies_ms: list[float]
    statuses: dict[int, int]
    seconds: float
    samples: list[str] = field(default_factory=list)  # a few unexpected answers, for the error message
    generator_cpu: float = 0.0  # CPU seconds the load generator's processes used
    server_cpu: float = 0.0  # CPU seconds gunicorn's processes used meanwhile

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def require(self, expected: set[int]) -> Load:
        bad = {status: n for status, n in self.statuses.items() if status not in expected}
        if bad:
            raise SystemExit(f"unexpected answers {bad}; first: {self.samples[:3]}")
        return self


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str],
              body: bytes | None) -> tuple[http.client.HTTPResponse, bytes]:
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response, response.read()


def _client_thread(port: int, make_request: RequestFactory, client: int, count: int | None, stop_at: list[float],
                   start: threading.Event, out: dict[str, Any], expected: set[int], think: float) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies, statuses, samples = out["latencies"], out["statuses"], out["samples"]
    pause = random.Random(client)
    start.wait()
    if think:
        time.sleep(pause.uniform(0, think))  # people do not all start at the same instant
    seq = 0
    while (count is None or seq < count) and (not stop_at or time.perf_counter() < stop_at[0]):
        if think and seq:
            time.sleep(pause.expovariate(1 / think))  # reading the next case before deciding it
        method, path, headers, body = make_request(client, seq)
        seq += 1
        began = time.perf_counter()
        try:
            response, payload = _exchange(conn, method, path, headers, body)
        except (OSError, http.client.HTTPException):
            # The server closed an idle keep-alive connection (or recycled its worker) before this
            # request went out: what every HTTP client does is reconnect and send it once more.
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            began = time.perf_counter()
            try:
                response, payload = _exchange(conn, method, path, headers, body)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                statuses[-1] = statuses.get(-1, 0) + 1
                samples.append(repr(exc))
                continue
        elapsed = (time.perf_counter() - began) * 1000
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.status in expected:
            latencies.append(elapsed)
        elif len(samples) < 5:
            samples.append(f"{response.status} {method} {path}: {payload[:300]!r}")
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.close()


def _client_process(port: int, make_request: RequestFactory, clients: list[int], count: int | None,
                    seconds: float | None, go: Any, results: Any, expected: set[int], think: float) -> None:
    start = threading.Event()
    outs: list[dict[str, Any]] = [{"latencies": [], "statuses": {}, "samples": []} for _ in clients]
    stop_at: list[float] = []
    threads = [threading.Thread(target=_client_thread,
                                args=(port, make_request, client, count, stop_at, start, out, expected, think))
               for client, out in zip(clients, outs, strict=True)]
    for thread in threads:
        thread.start()
    go.wait()
    if seconds is not None:
        stop_at.append(time.perf_counter() + seconds)
    start.set()
    for thread in threads:
        thread.join()
    statuses: dict[int, int] = {}
    for out in outs:
        for status, n in out["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    results.put(([ms for out in outs for ms in out["latencies"]], statuses,
                 [s for out in outs for s in out["samples"]][:5], time.perf_counter()))


def load(server: Server, make_request: RequestFactory, *, concurrency: int, seconds: float | None = None,
         per_client: int | None = None, processes: int = 2, expected: frozenset[int] = frozenset({200, 201}),
         think: float = 0.0) -> Load:
    """Run `concurrency` clients for `seconds`, or for `per_client` requests each. Closed loop (the next
    request as soon as the answer is in) unless `think` > 0: then each client starts at a random moment
    within `think` seconds and pauses a random time (exponential, mean `think`) between requests, as
    people working a queue do; latencies never include the pauses."""
    if (seconds is None) == (per_client is None):
        raise ValueError("give seconds or per_client")
    context = multiprocessing.get_context("fork")
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = server.cpu_seconds()
    go, results = context.Event(), context.Queue()
    groups = [list(range(concurrency))[i::processes] for i in range(processes)]
    groups = [group for group in groups if group]
    workers = [context.Process(target=_client_process,
                               args=(server.port, make_request, group, per_client, seconds, go, results,
                                     set(expected), think), daemon=True)
               for group in groups]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # let every client thread connect and wait at the start line
    started = time.perf_counter()
    go.set()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    samples: list[str] = []
    finished = started
    for _ in workers:
        part, part_statuses, part_samples, ended = results.get(timeout=600)
        latencies += part
        samples += part_samples
        finished = max(finished, ended)
        for status, n in part_statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    for worker in workers:
        worker.join()
    # The generator's processes have been waited for: their CPU is now in RUSAGE_CHILDREN (gunicorn, also a
    # child, is waited for only when it stops, so it is not in there).
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    generator = (children_after.ru_utime - children_before.ru_utime) + (children_after.ru_stime - children_before.ru_stime)
    return Load(latencies, statuses, finished - started, samples, generator, server.cpu_seconds() - server_before)


def json_body(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def interleaved(server: Server, sides: Mapping[str, RequestFactory], *, rounds: int, seconds: float, concurrency: int,
                expected: frozenset[int] = frozenset({200, 201})) -> dict[str, list[Load]]:
    """`rounds` rounds of every side in turn (product, baseline, product, baseline, ...), each for `seconds`:
    a burst of other work on the machine lands on one round of one side, not on one side as a whole."""
    out: dict[str, list[Load]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, factory in sides.items():
            out[name].append(load(server, factory, concurrency=concurrency, seconds=seconds,
                                  expected=expected).require(set(expected)))
    return out


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    """median (min-max) of a few rounds."""
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def side_rows(bench: str, name: str, runs: list[Load]) -> list[Result]:
    """One side of an interleaved bench: req/s median (min-max) over rounds, latency over all rounds."""
    rps = [run.rps for run in runs]
    latencies = [ms for run in runs for ms in run.latencies_ms]
    p95s = [run.p(95) for run in runs]
    return [Result(bench, f"{name} req/s, median (min-max) of {len(runs)} rounds", statistics.median(rps), "/s",
                   display=spread(rps) + " /s"),
            latency_result(bench, f"{name} p50 / p95 / p99", latencies,
                           notes=[f"{len(latencies):,} requests; p95 per round {spread(p95s, '{:.1f}')} ms"])]


def ratio_row(bench: str, label: str, subject: list[Load], baseline: list[Load], goal: float | None) -> Result:
    """subject / baseline req/s, round by round (the rounds were interleaved): median (min-max)."""
    ratios = [s.rps / b.rps * 100 for s, b in zip(subject, baseline, strict=True)]
    median = statistics.median(ratios)
    return Result(bench, label, median, "%", f">= {goal:.0%}" if goal is not None else "",
                  None if goal is None else median >= goal * 100, display=spread(ratios, "{:.1f}") + " %",
                  notes=["median (min-max) of the rounds' ratios"])


def generator_row(bench: str, runs: dict[str, list[Load]]) -> Result:
    """How much of the CPU the load generator took from the server (they share the machine's cores)."""
    generator = sum(run.generator_cpu for side in runs.values() for run in side)
    server = sum(run.server_cpu for side in runs.values() for run in side)
    wall = sum(run.seconds for side in runs.values() for run in side)
    share = generator / (generator + server) * 100 if generator + server else 0.0
    return Result(bench, "load generator CPU share (generator / (generator + gunicorn))", share, "%",
                  notes=[f"generator {generator:.1f} s, gunicorn {server:.1f} s CPU in {wall:.0f} s of load on "
                         f"{os.cpu_count()} CPUs; PostgreSQL and Redis not counted", load_note()])


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f})"


# Rows every request of a tenant locks, whoever makes it: a wait on one of these is a tenant-wide lock.
TENANT_WIDE = ("audit_auditchainhead", '"accounts_tenant"')


@dataclass
class LockWaits:
    """What a sampler of pg_stat_activity saw: backends of the bench's database waiting on a lock."""

    samples: int = 0
    waiting: list[int] = field(default_factory=list)  # per sample
    tenant_wide: list[int] = field(default_factory=list)  # per sample: of those, waiting on a tenant-wide row
    queries: dict[str, int] = field(default_factory=dict)  # the waiting statements, first 90 characters

    def summary(self) -> str:
        if not self.samples:
            return "no samples"
        top = sorted(self.queries.items(), key=lambda kv: -kv[1])[:2]
        return (f"{self.samples:,} samples every 20 ms: backends waiting on a lock max {max(self.waiting)}, "
                f"mean {statistics.fmean(self.waiting):.2f}; on a tenant-wide row max {max(self.tenant_wide)}, "
                f"mean {statistics.fmean(self.tenant_wide):.2f}, in {sum(1 for n in self.tenant_wide if n)} samples"
                + "".join(f"; {n}x {q!r}" for q, n in top))


@contextmanager
def lock_waits(interval: float = 0.02) -> Iterator[LockWaits]:
    """Sample pg_stat_activity every `interval` s on a connection of its own while the block runs."""
    import psycopg

    out = LockWaits()
    stop = threading.Event()

    def sample() -> None:
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            while not stop.is_set():
                rows = conn.execute("SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()").fetchall()
                out.samples += 1
                out.waiting.append(len(rows))
                out.tenant_wide.append(sum(1 for (q,) in rows if any(t in (q or "") for t in TENANT_WIDE)))
                for (q,) in rows:
                    key = " ".join((q or "").split())[:90]
                    out.queries[key] = out.queries.get(key, 0) + 1
                stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
