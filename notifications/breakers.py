"""One circuit breaker per external target (a webhook endpoint, the SMTP relay, the SMS provider).

pybreaker keeps the state machine; its state lives in the Django cache (Redis in production, so
every worker and process shares one view of each target; the file cache on a one-machine
`make run`). A target that keeps failing is skipped (its deliveries wait, uncounted) until the
reset timeout passes; then one trial call decides whether it closes again. Other targets are
unaffected because each has its own keys.

Cache keys: ``tg:breaker:<target>:{state,fail,success,opened_at}``. If the cache is unreachable the
breaker reads as closed: losing the breaker must not stop delivery.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pybreaker
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)
_PREFIX = "tg:breaker:"


class CacheCircuitStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker storage in the Django cache, shared by all processes that share the cache."""

    def __init__(self, target: str, state: str = pybreaker.STATE_CLOSED) -> None:
        super().__init__("cache")
        self._key = f"{_PREFIX}{target}:"
        self._safe(lambda: cache.add(self._key + "state", state, timeout=None))

    def _safe(self, func, default=None):  # type: ignore[no-untyped-def]
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
        return self._safe(lambda: cache.get(self._key + "state"), None) or pybreaker.STATE_CLOSED

    @state.setter
    def state(self, state: str) -> None:
        self._safe(lambda: cache.set(self._key + "state", state, timeout=None))

    def increment_counter(self) -> None:
        self._incr("fail")

    def reset_counter(self) -> None:
        self._safe(lambda: cache.set(self._key + "fail", 0, timeout=None))

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


def breaker_for(target: str) -> pybreaker.CircuitBreaker:
    """A breaker object for `target`; cheap to build, since all state is in the cache."""
    return pybreaker.CircuitBreaker(
        fail_max=settings.BREAKER_FAIL_MAX,
        reset_timeout=settings.BREAKER_RESET_SECONDS,
        state_storage=CacheCircuitStorage(target),
        # Report the target's own error (a 500, a timeout) rather than pybreaker's, for last_error.
        throw_new_error_on_trip=False,
        name=target,
    )


def breaker_open_until(target: str) -> datetime | None:
    """When an open breaker allows its next trial call; None when calls may go through now."""
    storage = CacheCircuitStorage(target)
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
    for name in ("state", "fail", "success", "opened_at"):
        try:
            cache.delete(f"{_PREFIX}{target}:{name}")
        except Exception:
            logger.warning("circuit breaker cache unavailable", exc_info=True)
