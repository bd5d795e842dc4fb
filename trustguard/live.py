"""The live queue's signal: "something you can see changed, fetch your queue again", pushed to open pages.

A change publishes *topics* of one tenant (``role:<name>``, ``user:<id>``, ``all``) after its transaction commits
(escalations/changes.py, the one recorder of case changes). A page's stream (dashboard.views.queue_live) listens to
the topics its person may see and sends a bare ``changed`` event: no case id, no tenant data. The page then fetches
its queue through the normal visible_to scoping, so the stream can never show anyone a case they may not see.

Two transports, chosen like the broker:
- Redis (``REDIS_URL``): every topic has a version in the cache (Redis) and a pub/sub channel; a stream sleeps in
  ``get_message`` and wakes when a channel it listens to gets a message.
- The embedded defaults (no Redis): the versions live in Django's cache (the file cache of ``make run``, shared by
  web, worker and beat); a stream reads its topics' versions every LIVE_POLL_SECONDS. That is the server reading
  a few small files, not the browser polling.

Either way a stream's position is a token over its topics' versions. It is sent as the event id, so a browser that
reconnects (EventSource sends Last-Event-ID) is told at once if anything changed while it was away.

Publishing is best-effort (the page also falls back to polling): after a failure a process skips publishing for
LIVE_PUBLISH_BACKOFF_SECONDS instead of making every change wait for a dead Redis.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)
_PREFIX = "tg:live:"
_skip_until = 0.0
_redis_lock = threading.Lock()
_redis_clients: dict[str, Any] = {}


def topic_key(tenant_id: int, topic: str) -> str:
    return f"{_PREFIX}{tenant_id}:{topic}"


def uses_redis() -> bool:
    return bool(settings.REDIS_URL)


def _redis() -> Any:
    """One client (connection pool) per process and URL; short timeouts: publishing must not hold a request."""
    import redis

    url = str(settings.REDIS_URL)
    with _redis_lock:
        client = _redis_clients.get(url)
        if client is None:
            client = _redis_clients[url] = redis.Redis.from_url(
                url,
                socket_connect_timeout=settings.LIVE_PUBLISH_TIMEOUT_SECONDS,
                socket_timeout=settings.LIVE_PUBLISH_TIMEOUT_SECONDS,
                health_check_interval=30,
            )
        return client


def live_publish(changes: Iterable[tuple[int, Iterable[str]]]) -> None:
    """Tell open pages that these (tenant id, topics) changed. Call after commit; never raises."""
    global _skip_until
    keys = sorted({topic_key(tenant_id, topic) for tenant_id, topics in changes for topic in topics})
    if not keys or time.monotonic() < _skip_until:
        return
    version = str(time.time_ns())
    try:
        cache.set_many(dict.fromkeys(keys, version), timeout=settings.LIVE_VERSION_TTL_SECONDS)
        if uses_redis():
            pipe = _redis().pipeline(transaction=False)
            for key in keys:
                pipe.publish(key, version)
            pipe.execute()
    except Exception:  # the page polls when the stream says nothing; a change must not fail for this
        _skip_until = time.monotonic() + settings.LIVE_PUBLISH_BACKOFF_SECONDS
        logger.warning("live queue publish failed; pages fall back to polling", exc_info=True)


def live_token(keys: list[str]) -> str:
    """Where these topics stand now: a short hash of their versions (a topic never published reads as 0). Raises
    when the cache does."""
    values = cache.get_many(keys)
    joined = "|".join(str(values.get(key, 0)) for key in keys)
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


class _Waiter:
    """Blocks until one of the keys may have changed, or the timeout: Redis pub/sub, or a short sleep."""

    def __init__(self, keys: list[str]) -> None:
        self.pubsub = None
        if uses_redis():
            import redis

            # A connection of its own (a subscribed connection cannot serve other commands), without the
            # publisher's short read timeout: it waits in get_message.
            client = redis.Redis.from_url(str(settings.REDIS_URL), socket_connect_timeout=2)
            self.pubsub = client.pubsub(ignore_subscribe_messages=True)
            self.pubsub.subscribe(*keys)

    def wait(self, timeout: float) -> None:
        if self.pubsub is None:
            time.sleep(min(timeout, settings.LIVE_POLL_SECONDS))
            return
        message = self.pubsub.get_message(timeout=timeout)
        while message is not None:  # drain a burst: one check covers them all
            message = self.pubsub.get_message(timeout=0)

    def close(self) -> None:
        if self.pubsub is not None:
            try:
                self.pubsub.close()
            except Exception:
                logger.debug("live queue: closing the subscription failed", exc_info=True)


def _event(name: str, token: str) -> str:
    return f"id: {token}\nevent: {name}\ndata: {name}\n\n"


def live_stream(keys: list[str], *, since: str = "") -> Iterator[str]:
    """The text/event-stream of one page: ``changed`` whenever the keys' token moves; at most LIVE_STREAM_SECONDS.

    1. ``retry`` tells the browser to reconnect after a second when the stream ends (it always does: a bounded
       stream never pins a server thread for long, and authority is checked again on every connection).
    2. ``hello`` carries the current token; ``changed`` comes first instead when it differs from `since` (the
       browser's Last-Event-ID, or the token the page was rendered with).
    3. Then one ``changed`` per change (bursts coalesce), a comment line as keep-alive, until the lifetime ends.

    If Redis or the cache fails, the stream ends asking the browser to come back in LIVE_FAILURE_RETRY_MS; the page
    polls meanwhile.
    """
    deadline = time.monotonic() + settings.LIVE_STREAM_SECONDS
    waiter: _Waiter | None = None
    try:
        waiter = _Waiter(keys)
        token = live_token(keys)
        yield f"retry: {settings.LIVE_RETRY_MS}\n\n"
        yield _event("changed" if since and since != token else "hello", token)
        last_sent = time.monotonic()
        while (left := deadline - time.monotonic()) > 0:
            waiter.wait(min(left, settings.LIVE_HEARTBEAT_SECONDS))
            fresh = live_token(keys)
            if fresh != token:
                token = fresh
                yield _event("changed", token)
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= settings.LIVE_HEARTBEAT_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
    except Exception:  # not GeneratorExit: a browser that went away is no failure
        logger.warning("live queue stream failed; the page polls until it reconnects", exc_info=True)
        yield f"retry: {settings.LIVE_FAILURE_RETRY_MS}\n\n"
    finally:
        if waiter is not None:
            waiter.close()


class StreamSlots:
    """At most LIVE_MAX_STREAMS open streams per process, so streams never take every worker thread."""

    _lock = threading.Lock()
    _open = 0

    @classmethod
    def take(cls) -> bool:
        with cls._lock:
            if cls._open >= settings.LIVE_MAX_STREAMS:
                return False
            cls._open += 1
            return True

    @classmethod
    def give_back(cls) -> None:
        with cls._lock:
            cls._open = max(0, cls._open - 1)

    @classmethod
    def open_count(cls) -> int:
        return cls._open
