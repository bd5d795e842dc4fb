"""What a write does when a concurrent write gets in its way (docs/CONCURRENCY.md).

1. Every write under /api/v1/ (POST, PUT, PATCH, DELETE) runs in ONE database transaction: the view's
   services nest in it as savepoints, and the answer is decided only once it has committed.
2. When PostgreSQL picks that transaction as a deadlock victim, cannot serialise it, or a concurrent
   writer won a unique-constraint race, the whole transaction is rolled back and the request runs again
   (up to ATTEMPTS times, after a short random pause). Safe: nothing of the first run survives the
   rollback, and network work is only ever scheduled with `transaction.on_commit`.
3. If it still collides, the answer is 409 problem+json `concurrent-write` with `Retry-After`: nothing
   was changed and the client should send the request again (with the same Idempotency-Key if it had one).
4. A read that writes (an export's audit record) is not retried; a collision there is the same 409.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse

from .collisions import CONFLICT_SLUG, RETRYABLE_SQLSTATES, collision, conflict_body_args, is_conflict, mark_conflict
from .errors import problem_http_response

# Also importable from here, where the policy is described.
__all__ = ["ATTEMPTS", "CONFLICT_SLUG", "RETRYABLE_SQLSTATES", "WRITE_METHODS", "collision", "conflict_response",
           "in_request_transaction", "is_conflict", "mark_conflict"]

logger = logging.getLogger("trustguard.api")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ATTEMPTS = 4
BACKOFF_SECONDS = 0.02  # the n-th retry waits up to BACKOFF_SECONDS * 2**n, at random


def conflict_response() -> HttpResponse:
    return mark_conflict(problem_http_response(*conflict_body_args(), headers={"Retry-After": "1"}))


class _RollBack(Exception):
    """Leaves the request's atomic block so that everything the attempt wrote is rolled back."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def in_request_transaction(request: HttpRequest, get_response: Callable[[HttpRequest], HttpResponse], *,
                           before: Callable[[], HttpResponse | None] | None = None,
                           after: Callable[[HttpResponse], None] | None = None) -> HttpResponse:
    """Run the rest of the request in one transaction; retry it whole after a collision (module docstring).

    `before` runs first in each attempt's transaction (an answer from it ends the request: the
    idempotency claim's lock); `after` runs last in it with the view's response (storing that answer).
    A 5xx is rolled back and not retried.
    """
    # Read (and kept by Django) now: DRF then parses each attempt's body from that copy.
    request.body  # noqa: B018
    response: HttpResponse | None = None
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** attempt))
        try:
            with transaction.atomic():
                early = before() if before else None
                if early is not None:
                    return early
                response = get_response(request)
                if is_conflict(response):
                    raise _RollBack(response)
                if response.status_code >= 500:
                    transaction.set_rollback(True)  # no half-written state
                elif after is not None:
                    after(response)
            return response
        except _RollBack as rolled_back:
            response = rolled_back.response
            what = "conflict answered by the view"
        except DatabaseError as exc:  # raised at COMMIT (deferred constraints) or outside the view
            what = collision(exc) or ""
            if not what:
                raise
            response = conflict_response()
        logger.warning("concurrent write (%s) in %s %s, attempt %d of %d", what, request.method, request.path,
                       attempt + 1, ATTEMPTS)
    assert response is not None
    return response
