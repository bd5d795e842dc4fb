"""Restore drill (CI): point-in-time recovery of TrustGuard's PostgreSQL with pgBackRest, proven end to end.

Run by `.ci/restore-drill`. It never touches the shared PostgreSQL: it runs a private cluster of its own
(initdb in a temporary directory, a free port, archive_mode on, WAL archived by pgBackRest into a
repository in the same directory), drives the application against it, and throws all of it away
afterwards, on failure too (a later drill also reaps what a killed one left).

1. Primary: initdb, WAL archiving to pgBackRest, `migrate`, `seed_demo`, the app served by gunicorn.
2. An online full backup (pgBackRest) while a vendor keeps creating escalations through the API.
3. Batch A: more escalations, an acknowledgement, a decision with a one-time code, a cancellation and a
   webhook. Then T, the recovery target, and the rows of every table at T (one snapshot).
4. After T: batch B (more escalations) and the incident: a superuser deletes the newest sealed audit events
   with the triggers off. verify_audit on the primary now fails.
5. The primary is lost (its WAL archived, then stopped). Recovery: pgBackRest restores the backup into
   a new data directory and replays the archived WAL up to T; the new cluster is promoted. The time
   from the restore command until the cluster accepts writes is the recovery time.
6. Proof: `manage.py verify_restore` passes (migrations, system checks, verify_audit, webhook secrets);
   every table holds exactly its rows at T; the app serves from the new cluster: /healthz reports the
   database ok, the vendor's key reads an escalation of batch A (200) and not one of batch B (404).

Needs: PostgreSQL server binaries (PG_BINDIR, else the newest /usr/lib/postgresql/*/bin), pgbackrest,
the project's .venv. Run as root, the clusters run as the `postgres` user (initdb refuses root).
RESTORE_DRILL_KEEP=1 keeps the directory for a post-mortem (stopped clusters, logs).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pyotp

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
PREFIX = "tg-restore-drill-"
STANZA = "drill"
STARTED = time.monotonic()


class DrillFailed(Exception):
    pass


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise DrillFailed(message)


# --- processes ----------------------------------------------------------------------------------------

AS_POSTGRES = os.geteuid() == 0


def as_cluster_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if AS_POSTGRES else args


def run(args: list[str], *, env: dict[str, str] | None = None, owner: bool = False, check: bool = True,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(as_cluster_owner(args) if owner else args, env=env, cwd=ROOT,  # noqa: S603 (our arguments)
                            capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise DrillFailed(f"{' '.join(args[:3])} ... exited {result.returncode}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


def pg_bindir() -> Path:
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    expect(bool(found), "no PostgreSQL server binaries: set PG_BINDIR or install postgresql")
    return found[-1].parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # A web server of a killed drill must not outlive it (PR_SET_PDEATHSIG = 1, SIGTERM).
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class Cluster:
    def __init__(self, name: str, data: Path, work: Path) -> None:
        self.name, self.data, self.work, self.port = name, data, work, free_port()

    def start(self) -> None:
        run([str(pg_bindir() / "pg_ctl"), "-D", str(self.data), "-l", str(self.work / f"{self.name}.log"),
             "-o", f"-p {self.port} -k {self.work}", "-w", "-t", "120", "start"], owner=True)

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            run([str(pg_bindir() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"],
                owner=True, check=False)

    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/trustguard"

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="trustguard",
                               autocommit=True, connect_timeout=10)


class Web:
    """The application served by gunicorn (as in production) against one cluster."""

    def __init__(self, env: dict[str, str], work: Path, name: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        log = (work / f"{name}-web.log").open("w")
        self.log = log.name
        self.process = subprocess.Popen(  # noqa: S603 (our own command line)
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "trustguard.wsgi"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4"})

    def wait_until_serving(self) -> Web:
        deadline = time.monotonic() + 90
        log = self.log
        while True:
            expect(self.process.poll() is None, f"gunicorn exited; see {log}")
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=5)  # noqa: S310 (our own server)
                return self
            except urllib.error.HTTPError:
                return self  # it answers (503 without beat is fine here)
            except OSError:
                expect(time.monotonic() < deadline, f"gunicorn did not answer within 90 s; see {log}")
                time.sleep(0.3)

    def call(self, method: str, path: str, token: str = "", body: Any = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Idempotency-Key": secrets.token_hex(8)}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (our own server)
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw.startswith(b"{") else raw.decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown (SIGTERM waits for graceful_timeout)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- the drill ----------------------------------------------------------------------------------------

def reap_stale(tmp: Path) -> None:
    """Stop and remove what a drill that was killed (SIGKILL, a lost CI runner) left behind."""
    for old in tmp.glob(PREFIX + "*"):
        try:
            pid = int((old / "drill.pid").read_text())
            os.kill(pid, 0)
            continue  # that drill is still running
        except (OSError, ValueError):
            pass
        for pidfile in old.glob("*/postmaster.pid"):
            run([str(pg_bindir() / "pg_ctl"), "-D", str(pidfile.parent), "-m", "immediate", "stop"], owner=True,
                check=False)
        shutil.rmtree(old, ignore_errors=True)
        say(f"removed {old}, left by an earlier drill that did not finish")


def app_env(work: Path, cluster: Cluster) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items()
                 if k not in {"DATABASE_URL", "REDIS_URL", "REQUIRE_SERVICES", "DEBUG"} and not k.startswith("PG")}
    return {**inherited, "DATABASE_URL": cluster.url(), "TRUSTGUARD_VAR_DIR": str(work / "var"), "LOG_LEVEL": "WARNING",
            "TRUSTGUARD_WEBHOOK_ALLOW_PRIVATE": "1", "TRUSTGUARD_RATE_LIMIT": "0", "DB_CONN_MAX_AGE": "0"}


def production_keys() -> dict[str, str]:
    """The keys kept outside the database (docs/BACKUP.md): the restored side gets the very same ones."""
    return {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50),
            "TRUSTGUARD_CREDENTIAL_PEPPER": secrets.token_urlsafe(32),
            "TRUSTGUARD_FIELD_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "TRUSTGUARD_AUDIT_KEY": "a1:" + secrets.token_urlsafe(32),
            "TRUSTGUARD_AUDIT_SIGNING_KEY": "s1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
            # The drill's private cluster has one role, its superuser (least privilege: tests/test_least_privilege.py).
            "TRUSTGUARD_ALLOW_OWNER_ROLE": "1"}


def manage(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([str(PYTHON), "manage.py", *args], env=env, check=check)


def escalation(n: int) -> dict[str, Any]:
    return {"type": "SANCTIONS_MATCH", "reason": f"Screening hit {n}", "requested_by": "screening@bank.example",
            "source": {"system": "screening", "entity_type": "customer", "entity_id": f"DRILL-{n}"},
            "payload": {"list": "OFAC", "score": 91}}


def create(web: Web, key: str, n: int) -> str:
    status, body = web.call("POST", "/api/v1/escalations", key, escalation(n))
    expect(status == 201, f"creating an escalation: {status} {body}")
    return str(body["id"])


def table_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    return {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # type: ignore[index]  # noqa: S608
            for t in tables}


def drill(work: Path) -> None:
    bindir = pg_bindir()
    config = work / "pgbackrest.conf"
    primary = Cluster("primary", work / "primary", work)
    restored = Cluster("restored", work / "restored", work)
    webs: list[Web] = []
    try:
        _drill(work, bindir, config, primary, restored, webs)
    finally:
        for web in webs:
            web.stop()
        restored.stop("immediate")
        primary.stop("immediate")


def _pgbackrest(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(["pgbackrest", f"--config={config}", f"--stanza={STANZA}", *args], owner=True)


def _drill(work: Path, bindir: Path, config: Path, primary: Cluster, restored: Cluster, webs: list[Web]) -> None:
    # 1. The primary, archiving its WAL to pgBackRest.
    run([str(bindir / "initdb"), "-D", str(primary.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
        owner=True)
    config.write_text(
        f"[global]\nrepo1-path={work}/repo\nrepo1-retention-full=2\nlog-path={work}/pgbackrest-log\n"
        f"lock-path={work}/pgbackrest-lock\nspool-path={work}/pgbackrest-spool\nlog-level-console=warn\n"
        f"log-level-file=info\nstart-fast=y\ncompress-type=lz4\nprocess-max=4\n\n"
        f"[{STANZA}]\npg1-path={primary.data}\npg1-port={primary.port}\npg1-socket-path={work}\n")
    config.chmod(0o644)
    for directory in ("pgbackrest-log", "pgbackrest-lock", "pgbackrest-spool"):
        (work / directory).mkdir()
        if AS_POSTGRES:
            shutil.chown(work / directory, "postgres", "postgres")
    with (primary.data / "postgresql.conf").open("a") as conf:
        conf.write(
            "\n# restore drill\nlisten_addresses = '127.0.0.1'\nwal_level = replica\narchive_mode = on\n"
            f"archive_command = 'pgbackrest --config={config} --stanza={STANZA} archive-push %p'\n"
            # A throwaway cluster on a busy CI host: no fsync (the drill tests archiving and replay, not disks).
            "fsync = off\n")
    primary.start()
    run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "trustguard"])
    _pgbackrest(config, "stanza-create")
    say(f"primary cluster on port {primary.port}, archiving WAL to pgBackRest")

    keys = production_keys()
    env = {**app_env(work, primary), **keys}
    manage(env, "migrate", "--no-input", "-v0")
    web = Web(env, work, "primary")  # starts while the demo is seeded
    webs.append(web)
    demo = json.loads(manage(env, "seed_demo", "--json").stdout)
    vendor = demo["api_keys"]["vendor"]
    people = {u["username"]: u for u in demo["users"]}
    web.wait_until_serving()
    say("migrated, seeded the demo tenant, serving the app")

    # 2. An online backup while a vendor keeps writing.
    created: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def vendor_writes() -> None:
        try:
            while not stop.wait(0.1):  # a steady trickle, not a load test: the backup shares the CPUs
                created.append(create(web, vendor, len(created)))
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=vendor_writes)
    writer.start()
    try:
        while len(created) < 3 and writer.is_alive():
            time.sleep(0.05)
        backup_started = len(created)
        _pgbackrest(config, "--type=full", "backup")
        during = len(created) - backup_started
    finally:
        stop.set()
        writer.join()
    expect(not errors, f"the vendor's writes failed: {errors}")
    say(f"full backup taken online; the vendor created {during} escalations during it ({len(created)} so far)")
    # pgBackRest keeps a backup's stop time in whole seconds and restores to T only from a backup that stopped
    # strictly before T's second: T must fall at least one whole second after the backup stopped.
    info = json.loads(_pgbackrest(config, "--output=json", "info").stdout)
    backup_stopped = info[0]["backup"][-1]["timestamp"]["stop"]
    while time.time() < backup_stopped + 1.5:
        time.sleep(0.1)

    # 3. Batch A, then T.
    batch_a = [create(web, vendor, 1000 + i) for i in range(5)]
    co = people["co"]
    status, body = web.call("POST", f"/api/v1/escalations/{batch_a[0]}/acknowledge", co["api_token"])
    expect(status == 200, f"acknowledge: {status} {body}")
    status, body = web.call("POST", f"/api/v1/escalations/{batch_a[1]}/decisions", co["api_token"],
                            {"decision": "approve", "justification": "False positive: different birth date",
                             "otp": pyotp.TOTP(co["totp_secret"]).now()})
    expect(status == 201 and body["status"] == "approved", f"decision: {status} {body}")
    status, body = web.call("POST", f"/api/v1/escalations/{batch_a[2]}/cancel", vendor)
    expect(status == 200, f"cancel: {status} {body}")
    status, body = web.call("POST", "/api/v1/webhooks", people["ops"]["api_token"],
                            {"url": "http://127.0.0.1:9/drill-receiver"})
    expect(status == 201, f"webhook: {status} {body}")
    with primary.connect() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        at_target = table_counts(conn)
        target: datetime = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
    say(f"batch A written; T = {target.isoformat()}: {at_target['escalations_escalation']} escalations, "
        f"{at_target['audit_auditevent']} audit events, {at_target['approvals_decision']} decisions")

    # 4. After T: batch B and the incident.
    batch_b = [create(web, vendor, 2000 + i) for i in range(5)]
    # The incident strikes sealed events (an unsealed one deleted by the owner before sealing leaves no trace:
    # docs/AUDIT.md, "Sealing"): seal what is pending, then delete the five newest sealed events.
    manage(env, "audit_seal")
    with primary.connect() as conn, conn.transaction():
        conn.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        conn.execute("DELETE FROM audit_auditevent WHERE id IN (SELECT id FROM audit_auditevent "
                     "WHERE seq IS NOT NULL ORDER BY seq DESC, id DESC LIMIT 5)")
        conn.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
    damaged = manage(env, "verify_audit", check=False)
    expect(damaged.returncode == 1, f"verify_audit should fail on the damaged primary: {damaged.stdout}{damaged.stderr}")
    say(f"after T: batch B ({len(batch_b)} escalations), then the incident: verify_audit on the primary fails: "
        f"{damaged.stdout.strip()[:120]}")

    # 5. The primary is lost; recover to T into a new cluster.
    _pgbackrest(config, "check")  # switches to a new WAL segment and waits until it is archived
    web.stop()
    primary.stop("fast")
    say("primary lost (WAL archived, cluster stopped)")
    recovery_started = time.monotonic()
    _pgbackrest(config, f"--pg1-path={restored.data}", "--type=time", f"--target={target:%Y-%m-%d %H:%M:%S.%f%z}",
                "--target-action=promote", "restore")
    # The new cluster archives its own timeline from its own data directory (a new host's pgbackrest.conf
    # would name it as pg1-path).
    with (restored.data / "postgresql.conf").open("a") as conf:
        conf.write(f"archive_command = 'pgbackrest --config={config} --stanza={STANZA} --pg1-path={restored.data} "
                   "archive-push %p'\n")
    files_restored = time.monotonic()
    restored.start()
    with restored.connect() as conn:
        while conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
            expect(time.monotonic() - files_restored < 120, "the restored cluster was not promoted within 120 s")
            time.sleep(0.1)
    recovered = time.monotonic()
    say(f"recovered to T on port {restored.port} in {recovered - recovery_started:.1f} s "
        f"(restore {files_restored - recovery_started:.1f} s, WAL replay and promotion {recovered - files_restored:.1f} s)")

    # 6. Proof.
    with restored.connect() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        now = table_counts(conn)
    differ = {t: (at_target.get(t), now.get(t)) for t in sorted(set(at_target) | set(now)) if at_target.get(t) != now.get(t)}
    expect(not differ, f"rows differ from T (table: (at T, restored)): {differ}")
    say(f"every table ({len(now)}) holds exactly its rows at T ({sum(now.values())} rows)")

    restored_env = {**app_env(work, restored), **keys}
    verified = manage(restored_env, "verify_restore", check=False)
    print(verified.stdout.rstrip(), flush=True)
    expect(verified.returncode == 0, f"verify_restore failed: {verified.stderr.strip()}")
    checked = time.monotonic()

    web = Web(restored_env, work, "restored")
    webs.append(web)
    web.wait_until_serving()
    status, health = web.call("GET", "/healthz")
    expect(health["checks"]["database"]["status"] == "ok", f"/healthz: {status} {health}")
    status, body = web.call("GET", f"/api/v1/escalations/{batch_a[1]}", vendor)
    expect(status == 200 and body["status"] == "approved", f"an escalation decided before T: {status} {body}")
    status, body = web.call("GET", f"/api/v1/escalations/{batch_b[0]}", vendor)
    expect(status == 404, f"an escalation created after T must be gone: {status} {body}")
    serving = time.monotonic()
    say(f"the app serves from the restored cluster: /healthz database ok ({status_line(health)}), the vendor key reads "
        "an escalation decided before T (200) and not one created after T (404)")
    print(f"\nRESTORE DRILL OK: recovery time {recovered - recovery_started:.1f} s (pgBackRest restore to T "
          f"until the cluster accepts writes); verified in {checked - recovered:.1f} s; serving "
          f"{serving - recovery_started:.1f} s after the restore began; whole drill {time.monotonic() - STARTED:.0f} s",
          flush=True)


def status_line(health: dict[str, Any]) -> str:
    failing = health.get("failing") or []
    return "no other check failing" if not failing else f"not running here: {', '.join(failing)}"


def main() -> int:
    tmp = Path(tempfile.gettempdir())
    reap_stale(tmp)
    work = Path(tempfile.mkdtemp(prefix=PREFIX))
    (work / "drill.pid").write_text(str(os.getpid()))
    if AS_POSTGRES:
        shutil.chown(work, "postgres", "postgres")

    def interrupted(signum: int, frame: Any) -> None:
        raise DrillFailed(f"interrupted by signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGALRM, interrupted)
    signal.alarm(600)
    ok = False
    try:
        drill(work)
        ok = True
    except Exception as exc:
        print(f"\nRESTORE DRILL FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        for log in sorted(work.glob("*.log")):
            print(f"--- {log.name} (last lines)\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
    finally:
        signal.alarm(0)
        if os.environ.get("RESTORE_DRILL_KEEP") == "1":
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
