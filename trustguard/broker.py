"""Publishing Celery tasks where nothing may wait for the broker: best-effort, bounded, behind a breaker.

Every task that a request (or a task) publishes is a *kick*: the work itself is already a row in the
database (an outbox event, a due delivery, a queued export job), and a periodic job that beat runs
(notifications.relay_outbox, notifications.deliver_due, reports.kick_queued_exports) finds it anyway.
So a publish that fails is skipped, not retried: the request answers at its normal latency, the sweep
picks the work up once the broker is back, and nothing piles up in memory to flood the broker when it
returns.

Bounded: a publish goes over connections of this module's own pool, which give up after
BROKER_PUBLISH_TIMEOUT_SECONDS without kombu's reconnect loop (by default it retries for the broker's
4 s connect timeout plus its back-off: a stopped Redis made every create wait 6 s).

Breaker: after BROKER_BREAKER_FAIL_MAX failures in a row, a process stops trying for
BROKER_BREAKER_RESET_SECONDS; then one trial publish closes it again or keeps it open. The breaker lives
in the process's memory (pybreaker's default storage), not in the cache as the delivery targets' breakers
do (notifications/breakers.py): the cache is usually the same Redis that just went away.

Skipped publishes are counted in `trustguard_broker_publishes_skipped_total{task, reason}`; /healthz
shows this process's breaker and count next to the broker check.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import pybreaker
from django.conf import settings

from . import metrics

logger = logging.getLogger(__name__)
Message = tuple[str, list[Any]]  # task name, positional args

_lock = threading.Lock()
_state: dict[str, Any] = {"key": None, "pool": None, "breaker": None, "skipped": 0}


def _breaker() -> pybreaker.CircuitBreaker:
    _ensure_process_state()
    breaker: pybreaker.CircuitBreaker = _state["breaker"]
    return breaker


def _ensure_process_state() -> None:
    """A pool and a breaker per process and broker: a forked child (gunicorn, Celery prefork) starts with its
    own, and so does a process whose settings name another broker (tests)."""
    key = (os.getpid(), settings.CELERY_BROKER_URL, repr(settings.CELERY_BROKER_TRANSPORT_OPTIONS))
    if _state["key"] == key:
        return
    with _lock:
        if _state["key"] == key:
            return
        old_pool, _state["pool"] = _state["pool"], None
        if old_pool is not None and _state["key"] is not None and _state["key"][0] == key[0]:
            old_pool.force_close_all()  # this process's own connections (never a parent's, after a fork)
        _state["breaker"] = pybreaker.CircuitBreaker(
            fail_max=settings.BROKER_BREAKER_FAIL_MAX, reset_timeout=settings.BROKER_BREAKER_RESET_SECONDS,
            name="broker", throw_new_error_on_trip=False)
        _state["skipped"] = 0
        _state["key"] = key


def broker_transport() -> str:
    """redis, rediss, amqp, amqps, pyamqp or filesystem: the scheme of CELERY_BROKER_URL."""
    return str(settings.CELERY_BROKER_URL).split("://", 1)[0]


def publish_connection_options() -> dict[str, Any]:
    """Connection options that make one attempt and give up after the publish timeout, per transport."""
    timeout = settings.BROKER_PUBLISH_TIMEOUT_SECONDS
    options: dict[str, Any] = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "max_retries": 0,
                               "connect_retries_timeout": timeout}
    transport = broker_transport()
    if transport in ("redis", "rediss"):
        options.update(socket_connect_timeout=timeout, socket_timeout=timeout)
    elif transport in ("amqp", "amqps", "pyamqp"):
        options.update(read_timeout=timeout, write_timeout=timeout)
    return options


def _pool() -> Any:
    _ensure_process_state()
    pool = _state["pool"]
    if pool is None:
        from .celery import app

        with _lock:
            pool = _state["pool"]
            if pool is None:
                connection = app.connection_for_write(url=settings.CELERY_BROKER_URL,
                                                      connect_timeout=settings.BROKER_PUBLISH_TIMEOUT_SECONDS,
                                                      transport_options=publish_connection_options())
                # One connection per thread that publishes at once (gthread: GUNICORN_THREADS); more wait
                # for one, up to the timeout.
                pool = _state["pool"] = connection.Pool(limit=16)
    return pool


def _send(messages: Sequence[Message]) -> None:
    from .celery import app

    with _pool().acquire(block=True, timeout=settings.BROKER_PUBLISH_TIMEOUT_SECONDS) as connection:
        try:
            for name, args in messages:
                app.send_task(name, args=args, connection=connection, retry=False)
        except Exception:
            # The connection may be half-broken (a Redis that restarted): give the pool a fresh one.
            connection.collect()
            raise


def broker_publish(messages: Sequence[Message]) -> bool:
    """Send these tasks over one connection if the broker takes them within the timeout; True if sent.

    Never raises: a broker that is down, slow or refusing (a full disk for the filesystem broker) costs
    the caller at most the timeout, and nothing once the breaker is open. The caller's work must be
    findable by a sweep (see the module's docstring).
    """
    if not messages:
        return True
    try:
        _breaker().call(_send, messages)
        return True
    except pybreaker.CircuitBreakerError:
        reason = "breaker_open"
    except Exception as exc:
        reason = "broker_error"
        logger.warning("could not publish %s (%s: %s); the periodic sweep will pick the work up",
                       ", ".join(sorted({name for name, _ in messages})), exc.__class__.__name__, exc)
    _state["skipped"] += len(messages)
    for name, _ in messages:
        metrics.BROKER_PUBLISHES_SKIPPED.labels(task=name, reason=reason).inc()
    return False


def broker_publish_one(task_name: str, *args: Any) -> bool:
    return broker_publish([(task_name, list(args))])


def broker_breaker_report() -> dict[str, Any]:
    """This process's view: the breaker's state, failures in a row, publishes skipped since it started."""
    breaker = _breaker()
    return {"breaker": breaker.current_state, "breaker_failures": breaker.fail_counter,
            "publishes_skipped": _state["skipped"]}


def broker_breaker_reset() -> None:
    """Close the breaker and forget the pool (tests; a process that knows the broker is back)."""
    with _lock:
        _state["key"] = None
    _ensure_process_state()
