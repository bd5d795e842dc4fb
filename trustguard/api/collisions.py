"""Which database errors are a concurrent write getting in the way, and the 409 that answers one.

Apart from trustguard.api.concurrency (the retry policy, docs/CONCURRENCY.md) so that the problem+json
exception handler (trustguard.api.errors) can recognise a collision without importing the policy, which
itself answers with that module's problem responses.
"""

from __future__ import annotations

from typing import TypeVar

from django.db import DatabaseError
from django.http import HttpResponse

# SQLSTATEs that mean "a concurrent transaction got in the way; the same request may well succeed now".
RETRYABLE_SQLSTATES = {
    "40001": "serialization failure",
    "40P01": "deadlock",
    "55P03": "lock not available",
    "23505": "unique constraint race",
}
CONFLICT_SLUG = "concurrent-write"

_R = TypeVar("_R")  # a response of any kind, handed back marked

# Set on a response that answers a collision, so the request transaction knows to roll back and retry.
MARKER = "_trustguard_concurrent_write"


def collision(exc: BaseException | None) -> str | None:
    """Which collision `exc` (or what caused it) is, or None when it is not one."""
    seen = 0
    while exc is not None and seen < 8:
        sqlstate = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "diag", None), "sqlstate", None)
        if sqlstate in RETRYABLE_SQLSTATES:
            return RETRYABLE_SQLSTATES[sqlstate]
        # SQLite: another connection holds the write lock past the busy timeout.
        if isinstance(exc, DatabaseError) and "database is locked" in str(exc):
            return "database locked"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def conflict_body_args() -> tuple[int, str, str, str]:
    return (409, CONFLICT_SLUG, "Conflicting concurrent write",
            "Another request changed the same data at the same moment, so nothing was changed. "
            "Send the request again (with the same Idempotency-Key, if it had one).")


def mark_conflict(response: _R) -> _R:
    """Mark a response (this module's, or the DRF exception handler's) as the answer to a collision."""
    setattr(response, MARKER, True)
    return response


def is_conflict(response: HttpResponse) -> bool:
    return bool(getattr(response, MARKER, False))
