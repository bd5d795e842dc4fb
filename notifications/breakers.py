"""One circuit breaker per external target (a webhook endpoint, the SMTP relay, the SMS provider).

pybreaker keeps the state machine; its state lives in the Django cache (Redis in production, so
every worker and process shares one view of each target; the file cache on a one-machine
`make run`). A target that keeps failing is skipped (its deliveries wait, uncounted) until the
reset timeout passes; then one trial call decides whether it closes again. Other targets are
unaffected because each has its own keys.

Cache keys: ``tg:breaker:<target>:{state,fail,success,opened_at}``. If the cache is unreachable the
breaker reads as closed: losing the breaker must not stop delivery.

A healthy target is the common case and every attempt asks about its breaker, so a process remembers
for CLOSED_MEMORY_SECONDS that a target's breaker was closed with no failure counted, and asks the
cache again after that or as soon as this process counts a failure there. A breaker opened by another
process is therefore seen here within that second (a few more requests may reach a target that just
started failing; each failure is still counted in the cache, so it opens no later).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pybreaker
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
_PREFIX = "tg:breaker:"
CLOSED_MEMORY_SECONDS = 1.0
_closed_at: dict[str, float] = {}  # target -> when this process last read its breaker closed, no failure counted
_closed_lock = threading.Lock()


def _remember_closed(target: str, closed: bool) -> None:
    with _closed_lock:
        if closed:
            _closed_at[target] = time.monotonic()
        else:
            _closed_at.pop(target, None)


def _known_closed(target: str) -> bool:
    with _closed_lock:
        at = _closed_at.get(target)
    return at is not None and time.monotonic() - at < CLOSED_MEMORY_SECONDS


class CacheCircuitStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker storage in the Django cache, shared by all processes that share the cache."""

    def __init__(self, target: str) -> None:
        super().__init__("cache")
        self._target = target
        self._key = f"{_PREFIX}{target}:"
        # No key means closed (see `state`), so nothing is written up front. A storage lives for one
        # attempt (one is built per attempt), and the first read of the state also reads the failure
        # count (one round trip): pybreaker reads the state twice as the call starts, the first read
        # serves both; and a success resets the count only if it was not already 0 at that read. (If
        # another worker's failure lands in between, this success leaves it counted; the next success
        # resets it. Consecutive failures across parallel workers are approximate anyway.) Every write
        # goes through.
        self._state: str | None = None
        self._fail_known_zero = False

    def _safe(self, func: Callable[[], _T], default: _T | None = None) -> _T | None:
        try:
            return func()
        except Exception:  # cache down: degrade to "closed", never block delivery
            logger.warning("circuit breaker cache unavailable", exc_info=True)
            return default

    def _incr(self, name: str) -> None:
        key = self._key + name

        def incr() -> None:
            try:
                cache.incr(key)
            except ValueError:  # missing key
                if not cache.add(key, 1, timeout=None):
                    cache.incr(key)

        self._safe(incr)

    @property
    def state(self) -> str:
        if self._state is None:
            if _known_closed(self._target):
                self._state, self._fail_known_zero = pybreaker.STATE_CLOSED, True
                return self._state
            keys = (self._key + "state", self._key + "fail")
            values = self._safe(lambda: cache.get_many(keys), None) or {}
            self._state = values.get(keys[0]) or pybreaker.STATE_CLOSED
            self._fail_known_zero = not values.get(keys[1])
            _remember_closed(self._target, self._state == pybreaker.STATE_CLOSED and self._fail_known_zero)
        return self._state

    @state.setter
    def state(self, state: str) -> None:
        self._state = state
        _remember_closed(self._target, False)  # read it from the cache next time
        self._safe(lambda: cache.set(self._key + "state", state, timeout=None))

    def increment_counter(self) -> None:
        self._fail_known_zero = False
        _remember_closed(self._target, False)
        self._incr("fail")

    def reset_counter(self) -> None:
        if self._fail_known_zero:
            return
        self._safe(lambda: cache.set(self._key + "fail", 0, timeout=None))
        self._fail_known_zero = True

    def increment_success_counter(self) -> None:
        self._incr("success")

    def reset_success_counter(self) -> None:
        self._safe(lambda: cache.set(self._key + "success", 0, timeout=None))

    @property
    def counter(self) -> int:
        return int(self._safe(lambda: cache.get(self._key + "fail"), 0) or 0)

    @property
    def success_counter(self) -> int:
        return int(self._safe(lambda: cache.get(self._key + "success"), 0) or 0)

    @property
    def opened_at(self) -> datetime | None:
        value = self._safe(lambda: cache.get(self._key + "opened_at"), None)
        return datetime.fromtimestamp(float(value), tz=UTC) if value is not None else None

    @opened_at.setter
    def opened_at(self, now: datetime) -> None:
        self._safe(lambda: cache.set(self._key + "opened_at", now.timestamp(), timeout=None))


def breaker_for(target: str, storage: CacheCircuitStorage | None = None) -> pybreaker.CircuitBreaker:
    """A breaker object for `target`; cheap to build, since all state is in the cache.

    `storage` may be the one breaker_open_until just read (its state is then not read again).
    """
    return pybreaker.CircuitBreaker(
        fail_max=settings.BREAKER_FAIL_MAX,
        reset_timeout=settings.BREAKER_RESET_SECONDS,
        state_storage=storage or CacheCircuitStorage(target),
        # Report the target's own error (a 500, a timeout) rather than pybreaker's, for last_error.
        throw_new_error_on_trip=False,
        # A permanent failure (a push subscription that is gone) is the target answering properly: not counted.
        exclude=[lambda exc: bool(getattr(exc, "permanent", False))],
        name=target,
    )


def breaker_open_until(target: str, storage: CacheCircuitStorage | None = None) -> datetime | None:
    """When an open breaker allows its next trial call; None when calls may go through now."""
    storage = storage or CacheCircuitStorage(target)
    if storage.state != pybreaker.STATE_OPEN:
        return None
    opened_at = storage.opened_at
    if opened_at is None:
        return None
    until = opened_at + timedelta(seconds=settings.BREAKER_RESET_SECONDS)
    return until if until > datetime.now(UTC) else None


def breaker_state(target: str) -> str:
    return CacheCircuitStorage(target).state


def breaker_reset(target: str) -> None:
    """Forget a target's breaker state (tests, or an operator who fixed the receiver)."""
    _remember_closed(target, False)
    for name in ("state", "fail", "success", "opened_at"):
        try:
            cache.delete(f"{_PREFIX}{target}:{name}")
        except Exception:
            logger.warning("circuit breaker cache unavailable", exc_info=True)
