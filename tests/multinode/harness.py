"""Processes for the multi-node test, all on loopback: gunicorn web servers, Celery workers and beats, a broker of
the test's own (a redis-server it starts and stops, or a gate in front of RabbitMQ that it closes), a webhook
receiver that verifies signatures, and a load driver that behaves as a client would (idempotency keys, retries on
connection errors and 5xx, on the other web server).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> float:
    """Poll until `check()` holds; return the seconds it took (raise naming `what` after `timeout`)."""
    start = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - start
        except Exception:
            pass
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


class Proc:
    """A child process in its own session, so a SIGKILL takes its whole group (gunicorn's or Celery's workers
    die with their master, as on a node that dies)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.args, self.env, self.logs = name, args, env, logs
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Proc:
        self.starts += 1
        log = (self.logs / f"{self.name}.{self.starts}.log").open("wb")
        self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: no graceful shutdown, in-flight work is lost."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 30) -> str:
        path = self.logs / f"{self.name}.{self.starts}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


class RedisServer:
    """A redis-server of the test's own (never the shared one): stopped and started again on the same port."""

    def __init__(self, logs: Path) -> None:
        self.port = free_port()
        self.logs = logs
        self.proc = Proc(f"redis-{self.port}", ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                                "--save", "", "--appendonly", "no", "--dir", str(logs)], dict(os.environ),
                         logs)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc.start()
        wait_for(self._ping, 20, "own redis-server answering")

    def stop(self) -> None:
        self.proc.kill()  # as a crash: whatever was queued in it is gone too (the database still has the work)

    def _ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")


class TcpGate:
    """A loopback TCP forwarder in front of a broker the test must not stop (the machine's RabbitMQ): closing
    the gate refuses new connections and cuts every open one, which is what the applications see of an outage."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for conn in (source, sink):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


@dataclass
class Receiver:
    """The source system's webhook endpoint on 127.0.0.1: verifies every request's Standard Webhooks signature
    and records the event ids (a delivery may arrive more than once: it de-duplicates by webhook-id)."""

    secret: str = ""
    received: list[tuple[str, str, float]] = field(default_factory=list)  # (webhook-id, type, monotonic time)
    forged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}/hooks"

    def start(self) -> None:
        from standardwebhooks import Webhook

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event = Webhook(receiver.secret).verify(body, {k.lower(): v for k, v in self.headers.items()})
                    with receiver.lock:
                        receiver.received.append((self.headers["webhook-id"], event["type"], time.monotonic()))
                    status = 200
                except Exception:
                    with receiver.lock:
                        receiver.forged += 1
                    status = 400
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def ids(self) -> list[str]:
        with self.lock:
            return [r[0] for r in self.received]


class Cluster:
    """Two web servers, two workers, two beats against one database, cache and broker."""

    def __init__(self, tmp: Path, *, database_url: str, cache_url: str, broker_url: str) -> None:
        self.tmp, self.logs = tmp, tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_", "CELERY_"))},
            "DJANGO_SETTINGS_MODULE": "trustguard.settings_test", "DEBUG": "0",
            "DATABASE_URL": database_url, "REDIS_URL": cache_url, "CELERY_BROKER_URL": broker_url,
            "TRUSTGUARD_VAR_DIR": str(tmp / "var"), "TRUSTGUARD_WEBHOOK_ALLOW_PRIVATE": "1", "TRUSTGUARD_RATE_LIMIT": "0",
            "TRUSTGUARD_SWEEP_INTERVAL": "5", "TRUSTGUARD_DELIVERY_BACKOFF_BASE": "1",
            "TRUSTGUARD_DELIVERY_BACKOFF_MAX": "5", "TRUSTGUARD_DELIVERY_LEASE_SECONDS": "10",
            "TRUSTGUARD_WEBHOOK_TIMEOUT": "5", "TRUSTGUARD_METRICS_TOKEN": "multinode", "LOG_JSON": "0",
            "LOG_LEVEL": "WARNING", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4", "DB_CONN_MAX_AGE": "60",
        }
        self.web_ports = [free_port(), free_port()]
        py = sys.executable
        self.webs = [Proc(f"web{i + 1}", [py, "-m", "gunicorn", "-c", "gunicorn.conf.py", "trustguard.wsgi"],
                          self._web_env(i), self.logs) for i in range(2)]
        self.workers = [Proc(f"worker{i + 1}", [py, "-m", "celery", "-A", "trustguard", "worker", "--loglevel=WARNING",
                                                "--concurrency=2", "--pool=prefork", "--without-gossip",
                                                "--without-mingle", "-n", f"mn{i + 1}-{uuid.uuid4().hex[:6]}@%h"],
                             self.env, self.logs) for i in range(2)]
        self.beats = [Proc(f"beat{i + 1}", [py, "-m", "celery", "-A", "trustguard", "beat", "--loglevel=WARNING",
                                            "--pidfile=", "--max-interval=2", "-s", str(tmp / f"beat{i + 1}-schedule")],
                           self.env, self.logs) for i in range(2)]

    def _web_env(self, i: int) -> dict[str, str]:
        return {**self.env, "BIND": f"127.0.0.1:{self.web_ports[i]}"}

    def start_web(self, i: int) -> None:
        metrics_dir = self.tmp / f"metrics-web{i + 1}-{self.webs[i].starts + 1}"
        metrics_dir.mkdir(parents=True)  # empty at every start, as docs/OBSERVABILITY.md asks
        self.webs[i].env = {**self._web_env(i), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        self.webs[i].start()
        wait_for(lambda: self.get(i, "/readyz")[0] == 200, 60, f"web{i + 1} ready")

    def start(self) -> None:
        for proc in (*self.workers, *self.beats):
            proc.start()
        for i in range(2):
            self.start_web(i)

    def stop(self) -> None:
        for proc in (*self.beats, *self.webs, *self.workers):
            proc.stop()

    def get(self, i: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.web_ports[i], timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def health(self, i: int) -> tuple[int, dict[str, Any]]:
        status, body = self.get(i, "/healthz")
        return status, json.loads(body)

    def logs_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log_tail()}" for p in (*self.webs, *self.workers, *self.beats))


@dataclass
class Attempt:
    kind: str  # create | decide
    server: int
    started: float  # monotonic
    ended: float
    status: int  # 0: a connection error (refused, reset, timed out)
    retry: int  # 0 for the first attempt of a logical request

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


@dataclass
class Approver:
    token: str
    totp: Any  # pyotp.TOTP
    last_step: int = 0
    busy: bool = False  # a decision of this person in flight: the next waits (codes must arrive in step order)


class Driver:
    """Creates escalations (vendor key) and decides them (approvers' tokens and codes) through both web servers,
    as clients do: every write has an Idempotency-Key, and a connection error, a 5xx or a 409 "in progress" is
    retried with the same key and body on the other server, until it succeeds."""

    RETRYABLE = {0, 409, 500, 502, 503, 504}

    def __init__(self, cluster: Cluster, vendor_key: str, approvers: list[Approver]) -> None:
        self.cluster = cluster
        self.vendor_key = vendor_key
        self.approvers = approvers
        self.attempts: list[Attempt] = []
        self.created: dict[str, str] = {}  # source entity id -> escalation id (one per logical create)
        self.decided: dict[str, str] = {}  # escalation id -> decision id
        self.deadline_cases: list[str] = []  # left undecided; the test makes their deadline fall due
        self.failures: list[str] = []
        self._to_decide: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._approver_lock = threading.Lock()
        self._seq = 0

    def start(self, creators: int = 2, deciders: int = 3) -> None:
        self._threads.append(threading.Thread(target=self._probe, daemon=True))
        for n in range(creators):
            self._threads.append(threading.Thread(target=self._loop, args=(self._create_one, n), daemon=True))
        for n in range(deciders):
            self._threads.append(threading.Thread(target=self._loop, args=(self._decide_one, creators + n), daemon=True))
        for thread in self._threads:
            thread.start()

    def halt(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)
        assert not any(t.is_alive() for t in self._threads), "a client thread did not finish its request"

    def _loop(self, one: Callable[[random.Random], None], n: int) -> None:
        rng = random.Random(n)
        while not self._stop.is_set():
            try:
                one(rng)
            except Exception as exc:  # recorded: the test fails on any
                with self._lock:
                    self.failures.append(f"{exc.__class__.__name__}: {exc}")
                time.sleep(0.5)
            time.sleep(rng.uniform(0.05, 0.15))  # a client's own work between calls

    def _send(self, kind: str, path: str, body: dict[str, Any], token: str, rng: random.Random) -> dict[str, Any]:
        """One logical write: the same key and body until a 2xx (or a 4xx, which is a failure of the test)."""
        key = str(uuid.uuid4())
        payload = json.dumps(body).encode()
        server = rng.randrange(2)
        deadline = time.monotonic() + 120
        for retry in range(10_000):
            started = time.monotonic()
            status, data = self._exchange(server, path, payload, token, key)
            with self._lock:
                self.attempts.append(Attempt(kind, server, started, time.monotonic(), status, retry))
            if 200 <= status < 300:
                result: dict[str, Any] = json.loads(data)
                return result
            if status not in self.RETRYABLE:
                raise AssertionError(f"{kind} answered {status}: {data[:300]!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{kind} not done after 120 s of retries (last {status})")
            server = 1 - server  # as a client behind two addresses would
            time.sleep(0.2 if status else 0.05)
        raise AssertionError("unreachable")

    def _exchange(self, server: int, path: str, payload: bytes, token: str, key: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.cluster.web_ports[server], timeout=30)
        try:
            conn.request("POST", path, body=payload, headers={
                "Authorization": f"Bearer {token}", "Idempotency-Key": key, "Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            return 0, b""
        finally:
            conn.close()

    def _probe(self) -> None:
        """The control: GET /readyz (a request and a database query, no broker) every 100 ms on either server, so
        the test can tell a machine that got slower (a neighbour's burst) from a request path that did."""
        server = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status = self.cluster.get(server, "/readyz")[0]
            except (OSError, http.client.HTTPException):
                status = 0
            if status == 200:
                with self._lock:
                    self.attempts.append(Attempt("probe", server, started, time.monotonic(), status, 0))
            server = 1 - server
            time.sleep(0.1)

    def _create_one(self, rng: random.Random) -> None:
        with self._lock:
            self._seq += 1
            seq = self._seq
        entity = f"MN-{uuid.uuid4().hex}"
        body = {"type": "SMR", "reason": "Unusual pattern of transfers", "requested_by": "screening@bank.example",
                "source": {"system": "screening", "entity_type": "alert", "entity_id": entity}}
        escalation = self._send("create", "/api/v1/escalations", body, self.vendor_key, rng)
        with self._lock:
            self.created[entity] = str(escalation["id"])
            (self.deadline_cases if seq % 4 == 0 else self._to_decide).append(escalation["id"])

    def _approver(self) -> tuple[Approver, str] | None:
        """An approver with a code left in this or the next time step (a code counts once per step)."""
        step = int(time.time()) // 30
        with self._approver_lock:
            for approver in self.approvers:
                use = max(step, approver.last_step + 1)
                if use <= step + 1 and not approver.busy:
                    approver.last_step, approver.busy = use, True
                    return approver, approver.totp.at(use * 30)
        return None

    def _decide_one(self, rng: random.Random) -> None:
        with self._lock:
            escalation_id = self._to_decide.pop(0) if self._to_decide else None
        if escalation_id is None:
            time.sleep(0.2)
            return
        picked = self._approver()
        while picked is None and not self._stop.is_set():
            time.sleep(0.5)
            picked = self._approver()
        if picked is None:
            with self._lock:
                self._to_decide.insert(0, escalation_id)
            return
        approver, code = picked
        body = {"decision": "approve", "justification": "Checked the customer file", "otp": code}
        try:
            decision = self._send("decide", f"/api/v1/escalations/{escalation_id}/decisions", body, approver.token, rng)
        finally:
            with self._approver_lock:
                approver.busy = False
        with self._lock:
            self.decided[escalation_id] = str(decision.get("id", ""))

    def window(self, kind: str, start: float, end: float) -> list[float]:
        """Latencies (ms) of first attempts that started in [start, end) and succeeded."""
        with self._lock:
            return [a.ms for a in self.attempts
                    if a.kind == kind and a.retry == 0 and start <= a.started < end and 200 <= a.status < 300]


def rabbitmq_vhost(name: str, create: bool) -> None:
    """The test's own vhost on the machine's RabbitMQ (isolation from anything else using it)."""
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if create:
        subprocess.run([ctl, "add_vhost", name], check=False, capture_output=True, timeout=60)
        subprocess.run([ctl, "set_permissions", "-p", name, "guest", ".*", ".*", ".*"], check=True, capture_output=True,
                       timeout=60)
    else:
        subprocess.run([ctl, "delete_vhost", name], check=False, capture_output=True, timeout=60)
