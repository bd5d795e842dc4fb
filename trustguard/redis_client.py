"""The Redis client of the request's hot path (the throttle's counter, the relay's once-per-burst kick flag): one
connection pool per process and URL, shared by both; short timeouts, so Redis trouble costs a request a quarter of a
second, never a hang (each caller falls back when it fails)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=4)
def fast_redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.25)
