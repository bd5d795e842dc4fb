"""Idempotency keys for every POST/PUT/PATCH under /api/v1/ (Stripe semantics, CONTRACT.md section 4).

A middleware, so every app's API gets it without per-view code:

1. A request with `Idempotency-Key` and a valid credential claims (scope, key) with an INSERT in its
   own committed transaction, *before* the view runs. The unique constraint decides races: of two
   concurrent duplicates exactly one runs the view, so there is exactly one side effect.
2. A loser finds the row: another body (method + path + body hash) -> 422; still running -> 409;
   finished -> the stored response, replayed with `Idempotent-Replayed: true`.
3. After the view: 2xx-4xx responses are stored (except 429: a rate limit is transient, and storing
   it would make the key useless); 5xx and streamed responses release the claim so a retry runs again.
Keys live 24 h (job "api.purge_idempotency_keys").
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from trustguard.models import IdempotencyKey

from .errors import problem_http_response

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
METHODS = frozenset({"POST", "PUT", "PATCH"})
PREFIX = "/api/v1/"
KEY_TTL = timedelta(hours=24)
# A claim still "in flight" after this long belongs to a process that died mid-request: reclaimable.
ABANDONED_AFTER = timedelta(minutes=10)
MAX_KEY_LENGTH = 255
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, no spaces
_STORED_HEADERS = ("Content-Type", "Location", "Allow", "Content-Language")
_NOT_STORED = frozenset({429})


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\n", path.encode(), b"\n", body):
        digest.update(part)
    return digest.hexdigest()


def credential_scope(request: HttpRequest) -> str | None:
    """The scope of a valid bearer credential, or None (the view will answer 401)."""
    from accounts.authentication import bearer_actor, bearer_secret
    from trustguard.errors import DomainError

    secret = bearer_secret(request)
    if secret is None:
        return None
    try:
        return bearer_actor(request, secret).credential_scope
    except DomainError:
        return None


def _replay(record: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(bytes(record.response_body or b""), status=record.status_code or 200)
    for name, value in (record.response_headers or {}).items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def claim(*, scope: str, key: str, fingerprint: str, method: str, path: str) -> IdempotencyKey | HttpResponse:
    """Claim the key (an INSERT that commits on its own) or answer from the existing claim."""
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(scope=scope, key=key, fingerprint=fingerprint, method=method,
                                                     path=path[:500], created_at=now)
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(scope=scope, key=key).first()
        if existing is None:
            continue  # released between our INSERT and this read: try again
        stale = existing.created_at <= now - KEY_TTL or (
            existing.state == IdempotencyKey.State.IN_FLIGHT and existing.created_at <= now - ABANDONED_AFTER)
        if stale:
            # Conditional on the row we saw, so two reclaimers cannot both delete a fresh claim.
            IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at, state=existing.state).delete()
            continue
        if existing.fingerprint != fingerprint:
            return problem_http_response(
                422, "idempotency-key-reused", "Idempotency key reused",
                "This Idempotency-Key was used with a different request (method, path or body). Use a new key.")
        if existing.state == IdempotencyKey.State.IN_FLIGHT:
            return problem_http_response(
                409, "idempotency-request-in-progress", "Request in progress",
                "A request with this Idempotency-Key is still being processed. Retry shortly.",
                headers={"Retry-After": "1"})
        return _replay(existing)
    return problem_http_response(409, "idempotency-request-in-progress", "Request in progress",
                                 "Could not claim this Idempotency-Key. Retry shortly.", headers={"Retry-After": "1"})


def _release(record: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=record.pk, state=IdempotencyKey.State.IN_FLIGHT).delete()


def _store(record: IdempotencyKey, response: HttpResponse) -> None:
    headers = {name: response[name] for name in _STORED_HEADERS if response.has_header(name)}
    IdempotencyKey.objects.filter(pk=record.pk).update(
        state=IdempotencyKey.State.DONE, status_code=response.status_code, response_headers=headers,
        response_body=bytes(response.content), completed_at=timezone.now())


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in METHODS or not request.path.startswith(PREFIX):
            return self.get_response(request)
        key = request.headers.get(HEADER)
        if key is None:
            return self.get_response(request)
        if not _KEY_RE.fullmatch(key):
            return problem_http_response(
                400, "validation-error", "Invalid request",
                f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} visible ASCII characters (a UUID is a good key).",
                errors={HEADER: [f"1 to {MAX_KEY_LENGTH} visible ASCII characters."]})
        scope = credential_scope(request)
        if scope is None:
            return self.get_response(request)  # unauthenticated: nothing to scope the key to; the view says 401
        fingerprint = request_fingerprint(request.method, request.get_full_path(), request.body)
        outcome = claim(scope=scope, key=key, fingerprint=fingerprint, method=request.method, path=request.path)
        if isinstance(outcome, HttpResponse):
            return outcome
        try:
            response = self.get_response(request)
        except BaseException:
            _release(outcome)
            raise
        if response.status_code >= 500 or response.status_code in _NOT_STORED or response.streaming:
            _release(outcome)
        else:
            _store(outcome, response)
        return response
