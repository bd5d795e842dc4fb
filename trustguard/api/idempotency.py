"""Idempotency keys for every POST/PUT/PATCH under /api/v1/ (Stripe semantics, CONTRACT.md section 4).

A middleware, so every app's API gets it without per-view code:

1. A request with `Idempotency-Key` and a valid credential runs in one transaction (trustguard.api.concurrency)
   that first claims the key (claim): on PostgreSQL the key's transaction-scoped advisory lock, taken without
   waiting, so of two concurrent duplicates exactly one runs the view and the other is answered 409 at once;
   then the key's row is read. The view runs, and its response is written as the key's row in the same
   transaction: the side effect and the stored answer commit together or not at all, with one COMMIT. A
   process killed mid-request leaves nothing (its transaction rolls back and its lock goes with its
   connection), so a retry runs again at once; one killed just after its commit leaves the answer, which the
   retry gets replayed. Never two side effects. (The embedded engine takes no lock: of two duplicates run at
   once, the second's INSERT of the key fails, and everything it wrote is rolled back; it gets the first's
   answer.)
2. A request finding the row: another body (method + path + body hash) -> 422; finished -> the stored
   response, replayed with `Idempotent-Replayed: true`. (An in-flight row is the previous release's claim,
   committed before its view ran: 409 while its request runs, taken over once that request has died.)
3. 2xx-4xx responses are stored (except 429: a rate limit is transient, and storing it would make the
   key useless; what the request wrote, such as a counted wrong code, still commits). A 5xx rolls back
   everything the view wrote, the key included, so a retry runs again; a streamed response is not stored.
4. A collision with a concurrent write (deadlock, serialization failure) re-runs the view in a fresh
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

from .concurrency import WRITE_METHODS, in_request_transaction
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


def _claimer_died(existing: IdempotencyKey, now: datetime) -> bool:
    """PostgreSQL: nobody holds the in-flight claim's row lock, so the request that made it is gone (its
    connection closed, its transaction rolled back). Elsewhere: never said (ABANDONED_AFTER applies)."""
    if connection.vendor != "postgresql" or existing.created_at > now - UNLOCKED_GRACE:
        return False
    with transaction.atomic():
        free = IdempotencyKey.objects.select_for_update(skip_locked=True).filter(
            pk=existing.pk, state=IdempotencyKey.State.IN_FLIGHT)
        return bool(list(free.values_list("pk", flat=True)))



def _in_progress(detail: str = "A request with this Idempotency-Key is still being processed. Retry shortly.") -> HttpResponse:
    return problem_http_response(409, "idempotency-request-in-progress", "Request in progress", detail,
                                 headers={"Retry-After": "1"})


def _lock_id(scope: str, key: str) -> int:
    """The key's transaction-scoped advisory lock (a signed 64-bit number from its scope and key)."""
    digest = hashlib.blake2b(f"idempotency\n{scope}\n{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def claim(*, scope: str, key: str, fingerprint: str) -> HttpResponse | None:
    """In the request's transaction, before the view: None when this request is to run, else the answer.

    1. PostgreSQL: take the key's advisory lock for the transaction, without waiting: held by another
       request -> 409 (it is running). It goes when that request's transaction ends, committed or not:
       a request that dies mid-way leaves nothing to clean up.
    2. Read the key's row (in the lock's statement): none -> run; another body -> 422; done -> its response
       replayed. A stale row (past KEY_TTL, or an in-flight claim of the previous release whose request died)
       is deleted, and the request runs.
    """
    if connection.vendor == "postgresql":
        # The lock and the look-up in one round trip. The look-up's snapshot is taken before the lock: a holder
        # that committed in between is not seen here, but its row makes this request's INSERT of the key fail
        # (_store), which rolls back everything this request wrote and answers from that row.
        table, qn = IdempotencyKey._meta.db_table, connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_try_advisory_xact_lock(%s), (SELECT id FROM {qn(table)} "  # noqa: S608
                           f"WHERE {qn('scope')} = %s AND {qn('key')} = %s)", [_lock_id(scope, key), scope, key])
            locked, found = cursor.fetchone()
        if not locked:
            return _in_progress()
        if found is None:
            return None
    existing = IdempotencyKey.objects.filter(scope=scope, key=key).first()
    return None if existing is None else _answer_from(existing, fingerprint)


def _answer_from(existing: IdempotencyKey, fingerprint: str) -> HttpResponse | None:
    """What a request finding the key's row gets (claim, step 2); None after removing a stale row."""
    now = timezone.now()
    # In-flight rows come only from the previous release (which claimed before the view, committing the claim).
    stale = existing.created_at <= now - KEY_TTL or (
        existing.state == IdempotencyKey.State.IN_FLIGHT and (
            existing.created_at <= now - ABANDONED_AFTER or _claimer_died(existing, now)))
    if stale:
        # Conditional on the row we saw, so two reclaimers cannot both delete a fresh claim.
        IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at, state=existing.state).delete()
        return None
    if existing.fingerprint != fingerprint:
        return problem_http_response(
            422, "idempotency-key-reused", "Idempotency key reused",
            "This Idempotency-Key was used with a different request (method, path or body). Use a new key.")
    if existing.state == IdempotencyKey.State.IN_FLIGHT:
        return _in_progress()
    return _replay(existing)


class _Taken(Exception):
    """The key's row appeared while this request ran (the embedded engine takes no lock; the previous release's
    claim): everything this request wrote is rolled back, and it is answered from that row."""


def _store(*, scope: str, key: str, fingerprint: str, method: str, path: str, response: HttpResponse) -> None:
    """The answer, written in the request's transaction: the side effect and its stored response commit together."""
    headers = {name: response[name] for name in _STORED_HEADERS if response.has_header(name)}
    now = timezone.now()
    try:
        IdempotencyKey.objects.create(
            scope=scope, key=key, fingerprint=fingerprint, method=method, path=path[:500],
            state=IdempotencyKey.State.DONE, status_code=response.status_code, response_headers=headers,
            response_body=encrypt_bytes(bytes(response.content)), created_at=now, completed_at=now)
    except IntegrityError as exc:
        raise _Taken from exc


def _after_taken(scope: str, key: str, fingerprint: str) -> HttpResponse:
    existing = IdempotencyKey.objects.filter(scope=scope, key=key).first()
    answer = None if existing is None else _answer_from(existing, fingerprint)
    return answer or _in_progress("Could not claim this Idempotency-Key. Retry shortly.")


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
        method, path = str(request.method), request.path
        fingerprint = request_fingerprint(method, request.get_full_path(), request.body)

        def keep_answer(response: HttpResponse) -> None:
            # 429 (transient) and streamed answers are not kept: the key stays free for a retry.
            if response.status_code not in _NOT_STORED and not response.streaming:
                _store(scope=scope, key=key, fingerprint=fingerprint, method=method, path=path, response=response)

        try:
            return in_request_transaction(
                request, self.get_response, before=lambda: claim(scope=scope, key=key, fingerprint=fingerprint),
                after=keep_answer)
        except _Taken:
            return _after_taken(scope, key, fingerprint)


def run_once(*, scope: str, key: str, fingerprint: str, method: str, path: str,
             handler: Callable[[], HttpResponse]) -> HttpResponse:
    """The same claim for a page's form (the dashboard's "New escalation"): a double click runs `handler` once.

    The form carries a key made when it was shown. The first submission claims it and runs `handler` in one
    transaction with the claim; a successful answer (a redirect to the case) is stored in that transaction and
    replayed to the second click, which therefore lands on the same case. A refused form (4xx) is not stored,
    so the corrected form can be sent again. A click while the first is running gets the claim's 409.
    """
    try:
        with transaction.atomic():
            early = claim(scope=scope, key=key, fingerprint=fingerprint)
            if early is not None:
                return early
            response = handler()
            if response.status_code < 400:
                _store(scope=scope, key=key, fingerprint=fingerprint, method=method, path=path, response=response)
    except _Taken:
        return _after_taken(scope, key, fingerprint)
    return response
