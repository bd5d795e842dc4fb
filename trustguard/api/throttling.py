"""Rate limits for /api/v1/: per credential, and per client address for unauthenticated and failed-authentication calls.

- A valid credential: TRUSTGUARD_RATE_LIMIT requests per minute (settings.RATE_LIMIT_PER_MINUTE; 0 = off), keyed by
  the credential, not the address (many vendors sit behind one NAT; one vendor calls from many hosts).
- No credential, or one that fails to authenticate: TRUSTGUARD_AUTH_RATE_LIMIT per minute per client address
  (trustguard.middleware.client_ip: behind a proxy, the address the proxy reports). Past it the address is refused
  before its credential is even looked up, so guessing bearer tokens costs the guesser a minute per batch, and an
  unauthenticated flood no longer costs a hash and a query each.

The counter is a fixed window that starts at a key's first request: one atomic increment per request, one round
trip. On Redis (REDIS_URL) a Lua script (INCR, and PEXPIRE on the first); elsewhere one INSERT .. ON CONFLICT DO
UPDATE .. RETURNING on a row (SQLite serialises writers; PostgreSQL locks the row), so a burst of concurrent
requests admits exactly the limit, never more. Worst case across two windows: twice the limit within a moment,
at the end of one window and the start of the next.

It runs as a middleware before the idempotency middleware, outside any request transaction: the counter row's
lock is held for one statement, not for the request.

When the counter's store is unreachable (Redis down, the database locked past its timeout), requests are
admitted (fail open) and a warning is logged at most once a minute per process: the limit protects capacity,
not secrecy (credentials are still checked on every request), and a cache outage must not stop approvals.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse
from redis.exceptions import RedisError

from trustguard.middleware import client_ip
from trustguard.redis_client import fast_redis

from .errors import problem_http_response

logger = logging.getLogger(__name__)

# The API that takes credentials. The public schema and docs (/api/schema/, /api/docs/) check none and are left
# alone: nothing to guess there.
PREFIX = "/api/v1/"
WINDOW_SECONDS = 60
_KEY_PREFIX = "trustguard:rl:"
_LUA = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""
# Addresses seen over their limit, refused here without a round trip until their window ends (this process only:
# another process learns it at its first failed request from that address). Bounded; cleared when full.
_blocked: dict[str, float] = {}
_BLOCKED_MAX = 10_000
_warned = {"at": 0.0}
_lock = threading.Lock()


@lru_cache(maxsize=4)
def _redis(url: str) -> Any:
    client = fast_redis(url)
    return client, client.register_script(_LUA)


def _hit_redis(key: str) -> tuple[int, float]:
    _, script = _redis(settings.REDIS_URL)
    count, ttl_ms = script(keys=[_KEY_PREFIX + key], args=[WINDOW_SECONDS * 1000])
    return int(count), int(ttl_ms) / 1000


def _hit_database(key: str) -> tuple[int, float]:
    from trustguard.models import RateLimitWindow

    table, qn = RateLimitWindow._meta.db_table, connection.ops.quote_name
    now_ms = int(time.time() * 1000)
    sql = (f"INSERT INTO {qn(table)} ({qn('key')}, ends_at_ms, count) VALUES (%s, %s, 1) "  # noqa: S608 (names, not data)
           f"ON CONFLICT ({qn('key')}) DO UPDATE SET "
           f"count = CASE WHEN {qn(table)}.ends_at_ms <= %s THEN 1 ELSE {qn(table)}.count + 1 END, "
           f"ends_at_ms = CASE WHEN {qn(table)}.ends_at_ms <= %s THEN excluded.ends_at_ms ELSE {qn(table)}.ends_at_ms END "
           "RETURNING count, ends_at_ms")
    # Its own (sub)transaction: a failure leaves any surrounding transaction usable.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [key[:200], now_ms + WINDOW_SECONDS * 1000, now_ms, now_ms])
        count, ends_at_ms = cursor.fetchone()
    return int(count), max(0, int(ends_at_ms) - now_ms) / 1000


def hit(key: str, limit: int) -> tuple[bool, int]:
    """Count one request against `key`: (admitted, seconds until its window ends). Fails open (module docstring)."""
    try:
        count, remaining = (_hit_redis if settings.REDIS_URL else _hit_database)(key)
    except (RedisError, DatabaseError) as exc:
        now = time.monotonic()
        if now - _warned["at"] > WINDOW_SECONDS:
            _warned["at"] = now
            logger.warning("rate limiter unavailable, requests are admitted unlimited: %s", type(exc).__name__)
        return True, 0
    return count <= limit, max(1, math.ceil(remaining))


def reset() -> None:
    """Forget every counter of this process and of Redis (tests)."""
    _blocked.clear()
    if settings.REDIS_URL:
        client, _ = _redis(settings.REDIS_URL)
        for key in client.scan_iter(match=_KEY_PREFIX + "*", count=1000):
            client.delete(key)


def _too_many(retry_after: int, detail: str) -> HttpResponse:
    return problem_http_response(429, "rate-limited", "Too many requests", detail,
                                 headers={"Retry-After": str(retry_after)})


def _address_refused(address: str) -> HttpResponse | None:
    until = _blocked.get(address)
    if until is None:
        return None
    remaining = until - time.time()
    if remaining <= 0:
        _blocked.pop(address, None)
        return None
    return _too_many(max(1, math.ceil(remaining)), "Too many unauthenticated or failed requests from this address.")


def _count_address(address: str) -> HttpResponse | None:
    limit = settings.AUTH_RATE_LIMIT_PER_MINUTE
    if not limit:
        return None
    admitted, retry_after = hit(f"addr:{address}", limit)
    if admitted:
        return None
    with _lock:
        if len(_blocked) >= _BLOCKED_MAX:
            _blocked.clear()
        _blocked[address] = time.time() + retry_after
    return _too_many(retry_after, "Too many unauthenticated or failed requests from this address.")


class RateLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(PREFIX):
            return self.get_response(request)
        refused = self.check(request)
        return refused or self.get_response(request)

    def check(self, request: HttpRequest) -> HttpResponse | None:
        from .idempotency import credential_scope

        address = client_ip(request) or "-"
        if request.META.get("HTTP_AUTHORIZATION"):
            refused = _address_refused(address)
            if refused is not None:
                return refused  # before the lookup: a guess from a refused address is not even tried
            scope = credential_scope(request)  # the credential's lookup is kept on the request for DRF
            if scope is not None:
                limit = settings.RATE_LIMIT_PER_MINUTE
                if not limit:
                    return None
                admitted, retry_after = hit(f"cred:{scope}", limit)
                return None if admitted else _too_many(
                    retry_after, f"Rate limit of {limit} requests per minute for this credential exceeded.")
        return _count_address(address)
