"""Idempotency keys for every POST/PUT/PATCH under /api/v1/ (Stripe semantics, CONTRACT.md section 4).

A middleware, so every app's API gets it without per-view code:

1. A request with `Idempotency-Key` and a valid credential claims (scope, key) with an INSERT in its
   own committed transaction, *before* the view runs. The unique constraint decides races: of two
   concurrent duplicates exactly one runs the view, so there is exactly one side effect.
2. The view then runs in one transaction with the claim's row locked, and its response is stored in that
   same transaction: the side effect and the stored answer commit together or not at all. A process
   killed mid-request (a web server that dies) therefore leaves no side effect and an unlocked claim,
   which a retry takes over at once on PostgreSQL (elsewhere after ABANDONED_AFTER); a process killed
   just after its commit leaves the answer, which the retry gets replayed. Never two side effects.
3. A loser finds the row: another body (method + path + body hash) -> 422; still running -> 409;
   finished -> the stored response, replayed with `Idempotent-Replayed: true`.
4. 2xx-4xx responses are stored (except 429: a rate limit is transient, and storing it would make the
   key useless; what the request wrote, such as a counted wrong code, still commits). A 5xx rolls back
   everything the view wrote and releases the claim, so a retry runs again; a streamed response releases it.
5. A collision with a concurrent write (deadlock, serialization failure) re-runs the view in a fresh
   transaction, still holding the claim; a 409 `concurrent-write` that ends it is not stored (docs/CONCURRENCY.md).
   Writes without a key run in one transaction the same way (trustguard.api.concurrency).
Keys live 24 h (job "api.purge_idempotency_keys"). Stored bodies are encrypted with the field keys
(trustguard/crypto.py): a response may carry a secret shown once (a webhook's signing secret).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from trustguard.crypto import SecretUnreadable, decrypt_bytes, encrypt_bytes
from trustguard.models import IdempotencyKey

from .concurrency import WRITE_METHODS, in_request_transaction, is_conflict
from .errors import problem_http_response

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
METHODS = frozenset({"POST", "PUT", "PATCH"})
PREFIX = "/api/v1/"
KEY_TTL = timedelta(hours=24)
# A claim still "in flight" after this long belongs to a process that died mid-request: reclaimable.
ABANDONED_AFTER = timedelta(minutes=10)
# On PostgreSQL a running request holds its claim's row lock; an unlocked claim older than this (the moment
# between the claim's INSERT and the lock) belongs to a request that died: reclaimable at once.
UNLOCKED_GRACE = timedelta(seconds=2)
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
    """The scope of a valid credential, or None (the view will answer 401).

    Asked of DRF's configured authenticators, as the view will ask them: plumbing never imports accounts.
    (BearerAuthentication keeps its lookup on the request, so DRF's own pass costs no second query.)
    """
    from rest_framework.exceptions import APIException
    from rest_framework.request import Request
    from rest_framework.views import APIView

    from trustguard.errors import DomainError

    drf_request = Request(request)
    for authenticator in APIView().get_authenticators():  # DEFAULT_AUTHENTICATION_CLASSES, instantiated
        try:
            result = authenticator.authenticate(drf_request)
        except (DomainError, APIException):
            return None
        if result is not None:
            scope = getattr(result[0], "credential_scope", None)
            return scope if isinstance(scope, str) else None
    return None


def _replay(record: IdempotencyKey) -> HttpResponse:
    try:
        body = decrypt_bytes(bytes(record.response_body or b""))
    except SecretUnreadable as exc:
        # Stored under a field key no longer configured: the answer is lost, the side effect happened.
        logger.error("idempotency key %s: the stored response cannot be replayed: %s", record.pk, exc)
        return problem_http_response(409, "idempotency-response-unreadable", "Stored response unreadable",
                                     "This request was already processed, but its stored response cannot be read "
                                     "any more. Fetch the resource instead of repeating the request.")
    response = HttpResponse(body, status=record.status_code or 200)
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
            existing.state == IdempotencyKey.State.IN_FLIGHT and (
                existing.created_at <= now - ABANDONED_AFTER or _claimer_died(existing, now)))
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


def _claimer_died(existing: IdempotencyKey, now: datetime) -> bool:
    """PostgreSQL: nobody holds the in-flight claim's row lock, so the request that made it is gone (its
    connection closed, its transaction rolled back). Elsewhere: never said (ABANDONED_AFTER applies)."""
    if connection.vendor != "postgresql" or existing.created_at > now - UNLOCKED_GRACE:
        return False
    with transaction.atomic():
        free = IdempotencyKey.objects.select_for_update(skip_locked=True).filter(
            pk=existing.pk, state=IdempotencyKey.State.IN_FLIGHT)
        return bool(list(free.values_list("pk", flat=True)))


def _release(record: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=record.pk, state=IdempotencyKey.State.IN_FLIGHT).delete()


def _store(record: IdempotencyKey, response: HttpResponse) -> None:
    headers = {name: response[name] for name in _STORED_HEADERS if response.has_header(name)}
    IdempotencyKey.objects.filter(pk=record.pk).update(
        state=IdempotencyKey.State.DONE, status_code=response.status_code, response_headers=headers,
        response_body=encrypt_bytes(bytes(response.content)), completed_at=timezone.now())


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in WRITE_METHODS or not request.path.startswith(PREFIX):
            return self.get_response(request)
        key = request.headers.get(HEADER) if request.method in METHODS else None
        if key is None:
            return in_request_transaction(request, self.get_response)
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

        def hold_claim() -> HttpResponse | None:
            held = IdempotencyKey.objects.select_for_update().filter(pk=outcome.pk)
            if not list(held.values_list("pk", flat=True)):  # taken over as dead in the instant before the lock
                return problem_http_response(
                    409, "idempotency-request-in-progress", "Request in progress",
                    "Could not claim this Idempotency-Key. Retry shortly.", headers={"Retry-After": "1"})
            return None

        def keep_answer(response: HttpResponse) -> None:
            if response.status_code in _NOT_STORED or response.streaming:
                _release(outcome)
            else:
                _store(outcome, response)

        try:
            response = in_request_transaction(request, self.get_response, before=hold_claim, after=keep_answer)
        except BaseException:
            _release(outcome)
            raise
        if response.status_code >= 500 or is_conflict(response):
            _release(outcome)  # nothing was written: a retry with the same key runs again
        return response


def run_once(*, scope: str, key: str, fingerprint: str, method: str, path: str,
             handler: Callable[[], HttpResponse]) -> HttpResponse:
    """The same claim for a page's form (the dashboard's "New escalation"): a double click runs `handler` once.

    The form carries a key made when it was shown. The first submission claims it and runs `handler` in one
    transaction with the claim; a successful answer (a redirect to the case) is stored with it and replayed to
    the second click, which therefore lands on the same case. A refused form (4xx) or a failure releases the key,
    so the corrected form can be sent again. A click while the first is running gets the claim's 409.
    """
    outcome = claim(scope=scope, key=key, fingerprint=fingerprint, method=method, path=path)
    if isinstance(outcome, HttpResponse):
        return outcome
    try:
        with transaction.atomic():
            IdempotencyKey.objects.select_for_update().filter(pk=outcome.pk).exists()
            response = handler()
            if response.status_code < 400:
                _store(outcome, response)
    except BaseException:
        _release(outcome)
        raise
    if response.status_code >= 400:
        _release(outcome)
    return response
