"""Bench 5: the outbox relay, on the database side and end to end to a webhook receiver.

Goals (benchmarks issue): the relay claims and marks >= 5,000 events/s; end to end, Celery workers of
total concurrency C delivering to a receiver that answers after a fixed latency L reach >= 80% of the
ideal C / L deliveries per second.

Data: one fresh tenant (seed_demo: SMR cases go to its two compliance officers, notify_channels email +
in-app), one active webhook endpoint (all event types) on the local receiver, escalations written in bulk
and their events written straight into the outbox, unrelayed.

DB side, two mixes, each drained by calling outbox_relay() until it returns 0:
- "webhook only": escalation.acknowledged / .approval_recorded / .executed, which notify no person
  (escalations/notify.py): one webhook delivery per event.
- "with recipients": the lifecycle escalation.created / .acknowledged / .approved of the same cases:
  created tells the two officers (email + in-app) and the customer (email), approved the requester and the
  customer (email): 7 messages (5 email deliveries) and 3 webhook deliveries per 3 events.
Baseline in the same run, on the same rows: a bare set-based claim-and-mark loop
(UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT batch)), no fan-out.
The relay's on-commit kicks (Celery tasks for the new deliveries) are published to Redis inside the
timing, as in production; the queue is purged and the never-sent deliveries are deleted afterwards.

End to end: a threaded HTTP receiver on 127.0.0.1 answers 200 after L ms (keep-alive; counts requests
and checks the Standard Webhooks headers); real Celery workers (threads pool; BENCH_RELAY_PROCESSES
processes of BENCH_RELAY_THREADS threads, default 1 x 32; Redis broker from REDIS_URL) run as
subprocesses. Per run, N "webhook only" events (one per case) are seeded unrelayed and one
notifications.relay task is published, as the events' on-commit kick would; the clock stops when the
receiver has seen every event. Two runs: L = 200 ms (a remote endpoint; C/L = 160/s) and L = 20 ms
(C/L = 1,600/s, more than two shared cores can do: a CPU-bound figure).

Leftover unrelayed events of other benches (bench 4 leaves its sweep's events) are marked relayed
without fan-out first, so only this bench's rows are measured: point DATABASE_URL at a scratch database.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python -m bench --only 5 [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from notifications.outbox import catalogue

from .common import Result

GOAL_RATE = 5_000.0
GOAL_FRACTION = 0.80
ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_ONLY = (catalogue.ESCALATION_ACKNOWLEDGED.type, catalogue.ESCALATION_APPROVAL_RECORDED.type,
                catalogue.ESCALATION_EXECUTED.type)
LIFECYCLE = (catalogue.ESCALATION_CREATED.type, catalogue.ESCALATION_ACKNOWLEDGED.type, catalogue.ESCALATION_APPROVED.type)


# --- the receiver ---------------------------------------------------------------------------------

@dataclass
class Receiver:
    url: str
    latency: float
    count: int = 0
    unsigned: int = 0
    ids: set[str] = field(default_factory=set)
    arrivals: list[float] = field(default_factory=list)  # perf_counter at each first arrival
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def reset(self) -> None:
        with self.lock:
            self.count, self.unsigned, self.ids, self.arrivals = 0, 0, set(), []

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def start_receiver(latency: float) -> Receiver:
    """A keep-alive HTTP/1.1 receiver answering 200 after `latency` seconds."""
    receiver = Receiver(url="", latency=latency)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            event_id = self.headers.get("webhook-id") or ""
            signed = (self.headers.get("webhook-signature") or "").startswith("v1,") and \
                bool(self.headers.get("webhook-timestamp"))
            time.sleep(receiver.latency)
            with receiver.lock:
                receiver.count += 1
                receiver.unsigned += 0 if signed else 1
                if event_id not in receiver.ids:
                    receiver.ids.add(event_id)
                    receiver.arrivals.append(time.perf_counter())
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    receiver.server = server
    receiver.url = f"http://127.0.0.1:{server.server_port}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


# --- seeding --------------------------------------------------------------------------------------

@dataclass
class Setup:
    tenant_id: int
    endpoint_id: uuid.UUID
    policy_id: int


def _sql(sql: str, params: list[Any] | None = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.rowcount


def drain_leftovers() -> int:
    """Mark other benches' unrelayed events relayed (no fan-out): this bench measures its own rows only."""
    return _sql("UPDATE notifications_outboxevent SET relayed_at = now() WHERE relayed_at IS NULL")


def setup(url: str) -> Setup:
    from django.test import override_settings

    from escalations.demo import seed_demo
    from escalations.models import Policy
    from notifications.actors import OperatorActor
    from notifications.deliveries.webhooks import webhook_endpoint_create

    slug = f"bench-relay-{time.time_ns() // 1_000_000}"
    seed_demo(slug)
    policy = Policy.objects.get(tenant__slug=slug, type="SMR")
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):  # the receiver is on loopback
        endpoint, _ = webhook_endpoint_create(tenant_id=policy.tenant_id, actor=OperatorActor.system("bench"), url=url)
    return Setup(tenant_id=policy.tenant_id, endpoint_id=endpoint.pk, policy_id=policy.pk)


def seed_events(s: Setup, cases: int, types: tuple[str, ...]) -> tuple[int, int]:
    """`cases` SMR escalations (requester by email, customer contact) and one event of each of `types` per
    case, all unrelayed; returns the (first, last) outbox id written."""
    from django.db import transaction
    from django.utils import timezone

    from escalations.models import Policy
    from escalations.services import event_data
    from notifications.models import OutboxEvent
    from trustguard.jsonutil import to_jsonable

    from .seed import pending_escalations

    policy = Policy.objects.get(pk=s.policy_id)
    now = timezone.now()
    with transaction.atomic():
        escalations = pending_escalations(policy, cases, ack_due_at=now + timedelta_hours(1),
                                          expires_at=now + timedelta_hours(20),
                                          requested_by_email="analyst@bank.example", customer_contact=True)
        first = _next_outbox_id()
        rows = []
        for escalation in escalations:
            base = to_jsonable(event_data(escalation))
            for type_ in types:
                status = {catalogue.ESCALATION_ACKNOWLEDGED.type: "acknowledged",
                          catalogue.ESCALATION_APPROVED.type: "approved",
                          catalogue.ESCALATION_EXECUTED.type: "executed"}.get(type_, "pending")
                rows.append(OutboxEvent(tenant_id=s.tenant_id, type=type_, aggregate_type="escalation",
                                        aggregate_id=str(escalation.pk), data={**base, "status": status},
                                        occurred_at=now))
        OutboxEvent.objects.bulk_create(rows, batch_size=5000)
    last = _next_outbox_id() - 1
    _sql("ANALYZE notifications_outboxevent")
    return first, last


def timedelta_hours(hours: float) -> Any:
    from datetime import timedelta

    return timedelta(hours=hours)


def _next_outbox_id() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) + 1 FROM notifications_outboxevent")
        return int(cursor.fetchone()[0])


def _purge_queue() -> None:
    from trustguard.celery import app

    app.control.purge()


# --- DB side ----------------------------------------------------------------------------------------

def raw_claim_and_mark(batch: int) -> int:
    """The floor: claim and mark unrelayed rows set-wise, one transaction per batch, no fan-out."""
    total = 0
    while True:
        n = _sql("UPDATE notifications_outboxevent SET relayed_at = now() WHERE id IN ("
                 "SELECT id FROM notifications_outboxevent WHERE relayed_at IS NULL ORDER BY id "
                 "LIMIT %s FOR UPDATE SKIP LOCKED)", [batch])
        total += n
        if n < batch:
            return total


def relay_until_drained() -> int:
    from notifications.relay import outbox_relay

    total = 0
    while True:
        n = outbox_relay()
        total += n
        if n == 0:
            return total


def relay_batch_size() -> int:
    import inspect

    from notifications.relay import outbox_relay

    return int(inspect.signature(outbox_relay).parameters["batch"].default)


def measure_db(s: Setup, cases: int, mix: str) -> list[Result]:
    from notifications.models import Delivery, Message

    types = WEBHOOK_ONLY if mix == "webhook only" else LIFECYCLE
    first, last = seed_events(s, cases, types)
    events = last - first + 1
    batch = relay_batch_size()
    started = time.perf_counter()
    raw = raw_claim_and_mark(batch)
    raw_seconds = time.perf_counter() - started
    assert raw == events, (raw, events)
    # The same rows again, unrelayed, for the relay.
    _sql("UPDATE notifications_outboxevent SET relayed_at = NULL WHERE id BETWEEN %s AND %s", [first, last])
    _sql("VACUUM ANALYZE notifications_outboxevent")
    deliveries_before, messages_before = Delivery.objects.count(), Message.objects.count()
    started = time.perf_counter()
    relayed = relay_until_drained()
    seconds = time.perf_counter() - started
    deliveries = Delivery.objects.count() - deliveries_before
    messages = Message.objects.count() - messages_before
    _purge_queue()
    # These deliveries are never sent: drop them, so that the pending queue stays what it is in production.
    _sql("DELETE FROM notifications_delivery WHERE event_id BETWEEN %s AND %s", [first, last])
    _sql("DELETE FROM notifications_message WHERE event_id BETWEEN %s AND %s", [first, last])
    _sql("VACUUM ANALYZE notifications_delivery")
    _sql("VACUUM ANALYZE notifications_message")
    rate, raw_rate = relayed / seconds, raw / raw_seconds
    label = f"5 relay ({mix})"
    return [
        Result(label, f"raw claim+mark of {raw:,} events, batch {batch} (baseline)", raw_rate, "events/s"),
        Result(label, f"relay of {relayed:,} events: +{deliveries:,} deliveries, +{messages:,} messages",
               seconds, "s"),
        Result(label, "relay events claimed+fanned out+marked per second", rate, "events/s",
               f">= {GOAL_RATE:,.0f}/s", rate >= GOAL_RATE),
        Result(label, "relay / raw baseline", rate / raw_rate, "x"),
    ]


# --- end to end -------------------------------------------------------------------------------------

def _worker_env() -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "trustguard.settings_test"),
            "TRUSTGUARD_WEBHOOK_ALLOW_PRIVATE": "1", "LOG_LEVEL": "WARNING"}


def start_workers(processes: int, threads: int, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    """`processes` Celery workers with a pool of `threads` threads each; returns once all answer a ping."""
    from trustguard.celery import app

    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    for n in range(processes):
        name = f"bench-relay-{uuid.uuid4().hex[:8]}"
        out = open(log_dir / f"relay-worker-{n}.log", "wb")  # noqa: SIM115 (closed with the process)
        started.append((name, subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "trustguard", "worker", "--pool=threads",
             f"--concurrency={threads}", "--without-gossip", "--without-mingle", "--loglevel=WARNING",
             "-n", f"{name}@%h"],
            cwd=ROOT, env=_worker_env(), stdout=out, stderr=subprocess.STDOUT)))
    workers = [process for _, process in started]
    waiting = {name for name, _ in started}
    deadline = time.monotonic() + 60
    # The pings use a connection of their own, closed here, not one from the app's pool: a pooled connection
    # left waiting on its reply queue is closed again by kombu's after-fork hook in every process the HTTP
    # benches fork afterwards, and that child then reads the shared socket forever.
    with app.connection_for_write() as connection:
        while waiting and time.monotonic() < deadline:
            if any(process.poll() is not None for process in workers):
                break
            for reply in app.control.ping(timeout=0.5, connection=connection):
                waiting = {name for name in waiting if not next(iter(reply)).startswith(name + "@")}
    if waiting:
        for process in workers:
            stop_worker(process)
        raise RuntimeError(f"a worker did not start within 60 s: see {log_dir}/relay-worker-*.log")
    return workers


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """A warm shutdown (SIGTERM), then SIGKILL. The workers run the threads pool, so there are no children
    to reap; they stay in the bench's process group, so whoever kills that group kills them too."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _e2e_once(s: Setup, receiver: Receiver, workers: list[subprocess.Popen[bytes]], events: int, concurrency: int,
              latency: float) -> list[Result]:
    from notifications.models import Delivery, DeliveryStatus
    from trustguard.celery import app

    first, last = seed_events(s, events, (catalogue.ESCALATION_ACKNOWLEDGED.type,))
    assert last - first + 1 == events
    receiver.latency = latency
    receiver.reset()
    worker_cpu, bench_cpu = sum(_cpu_seconds(w.pid) for w in workers), time.process_time()
    started = time.perf_counter()
    app.send_task("notifications.relay")  # as the events' on-commit kick would
    deadline = started + max(60.0, 10 * events * latency / concurrency)
    while time.perf_counter() < deadline:
        with receiver.lock:
            seen = len(receiver.ids)
        if seen >= events:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    worker_cpu = sum(_cpu_seconds(w.pid) for w in workers) - worker_cpu
    bench_cpu = time.process_time() - bench_cpu
    with receiver.lock:
        seen, arrivals = len(receiver.ids), sorted(receiver.arrivals)
    delivered = Delivery.objects.filter(endpoint_id=s.endpoint_id, event_id__gte=first, event_id__lte=last,
                                        status=DeliveryStatus.DELIVERED).count()
    ideal = concurrency / latency
    achieved = seen / elapsed
    # Steady state: between the 10th and the 90th percentile arrival (no start-up, no tail).
    lo, hi = arrivals[len(arrivals) // 10], arrivals[len(arrivals) * 9 // 10]
    steady = (len(arrivals) * 8 // 10) / (hi - lo) if hi > lo else float("nan")
    label = f"5 relay (end to end, C={concurrency}, {latency * 1000:.0f} ms)"
    shape = f"{len(workers)} x {concurrency // len(workers)} threads"
    complete = seen == events == delivered and receiver.unsigned == 0
    return [
        Result(label, f"N={events:,} events relayed and delivered (workers: {shape})", elapsed,
               "s", notes=[f"requests {receiver.count}, unsigned {receiver.unsigned}, delivered rows {delivered}"]),
        Result(label, f"webhooks delivered per second ({seen:,} of {events:,} seen)", achieved, "/s"),
        Result(label, "ideal C / latency", ideal, "/s"),
        Result(label, "achieved / ideal", achieved / ideal * 100, "%", f">= {GOAL_FRACTION:.0%}",
               complete and achieved / ideal >= GOAL_FRACTION),
        Result(label, "steady state (10th-90th percentile arrival) / ideal", steady / ideal * 100, "%"),
        # A slot's cycle is latency + this: what the pipeline adds per delivery (claim, record, queueing).
        Result(label, "per-delivery overhead (C / achieved - latency)", (concurrency / achieved - latency) * 1000, "ms"),
        Result(label, "worker CPU per delivery (relay included)", worker_cpu / max(seen, 1) * 1000, "ms"),
        Result(label, "receiver (bench process) CPU per request", bench_cpu / max(seen, 1) * 1000, "ms"),
    ]


def measure_e2e(s: Setup, receiver: Receiver, runs: list[tuple[int, float]], processes: int,
                threads: int) -> list[Result]:
    """Worker processes with `threads` threads each (C = processes x threads); for each (N, latency): N events
    relayed and delivered."""
    _purge_queue()
    log_dir = Path("var/bench")
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = start_workers(processes, threads, log_dir)
    try:
        return [row for events, latency in runs
                for row in _e2e_once(s, receiver, workers, events, processes * threads, latency)]
    finally:
        for worker in workers:
            stop_worker(worker)


# --- entry point ------------------------------------------------------------------------------------

def run(quick: bool) -> tuple[list[Result], dict[str, str]]:
    processes = int(os.environ.get("BENCH_RELAY_PROCESSES", "1"))
    threads = int(os.environ.get("BENCH_RELAY_THREADS", "32"))
    # (N, latency): a receiver answering in 200 ms (a typical remote webhook endpoint; C/latency = 160/s at
    # C=32, within what one worker process can do on 2 cores) and in 20 ms (1,600/s: bound by CPU here).
    runs = [(200, 0.2), (200, 0.02)] if quick else [(3_000, 0.2), (2_000, 0.02)]
    if os.environ.get("BENCH_RELAY_RUNS"):  # e.g. "3200:0.2,2000:0.02" (N:latency in seconds)
        runs = [(int(n), float(latency)) for n, latency in
                (run.split(":") for run in os.environ["BENCH_RELAY_RUNS"].split(","))]
    cases = [int(n) for n in os.environ.get("BENCH_RELAY_DB_CASES", "100,100" if quick else "4000,1000").split(",")]
    receiver = start_receiver(runs[0][1])
    try:
        drain_leftovers()
        _purge_queue()
        s = setup(receiver.url)
        results = measure_db(s, cases[0], "webhook only")  # 3 events per case
        results += measure_db(s, cases[1], "with recipients")
        results += measure_e2e(s, receiver, runs, processes, threads)
    finally:
        receiver.close()
    return results, {}


def main() -> None:
    import argparse

    from .common import setup_django

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    setup_django()
    rows, _ = run(args.quick)
    for row in rows:
        print(row.row())


if __name__ == "__main__":
    main()
