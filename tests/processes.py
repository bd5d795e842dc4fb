"""Real processes for tests: start one (a web server, a Celery worker or beat, `make run`), wait until it is
ready, stop it (warm first), and read its log. Ports are free ones on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_env(*, var_dir: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a TrustGuard process: the embedded SQLite in `var_dir`, or `database_url`."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="trustguard.settings_test", TRUSTGUARD_VAR_DIR=str(var_dir), LOG_LEVEL="WARNING",
               **extra)
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def wait_for(condition: Callable[[], bool], *, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)  # polling interval, not a timing assertion


def start(args: list[str], *, env: dict[str, str], log: Path, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    """Start `args` in a process group of its own (so stop() reaches its children), output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, grace: float = 20) -> bool:
    """Send `sig` to the process group; SIGKILL it if it is still running after `grace` s. True if it ended warm."""
    if process.poll() is not None:
        return True
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=grace)
        return True
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return False


def log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def http_status(url: str, timeout: float = 5) -> int | None:
    """The HTTP status `url` answers with, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


@contextmanager
def web_server(env: dict[str, str], log: Path, *, timeout: float = 90) -> Iterator[str]:
    """The threaded development server (`make run`'s web process) on a free port: yields its base URL once
    /readyz answers 200; stopped on exit."""
    port = free_port()
    process = start([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert process.poll() is None, f"the web server exited:\n{log_tail(log)}"
            return http_status(base + "/readyz") == 200

        wait_for(ready, what=f"{base}/readyz", timeout=timeout)
        yield base
    finally:
        stop(process)
