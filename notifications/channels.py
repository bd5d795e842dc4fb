"""The network edge: send one email, one SMS, one webhook request, one push request. Called only outside
transactions.

Each sender returns a SendResult or raises SendFailed (with the HTTP status when there is one). A permanent
failure (a push subscription the push service says is gone) is dead-lettered at once, not retried, and does
not count against the target's circuit breaker: the target answered, and answered properly.
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from email.utils import make_msgid
from typing import Protocol

import httpx
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from standardwebhooks import Webhook

from trustguard.logging import mask_phone

from .ssrf import ResolvedTarget, TargetRefused, resolve_target


class SendFailed(Exception):
    def __init__(self, detail: str, *, status_code: int | None = None, permanent: bool = False) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.permanent = permanent


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str = ""
    status_code: int | None = None
    cost: Decimal | None = None
    cost_currency: str = ""


# --- email -------------------------------------------------------------------------------------

def email_send(*, to: str, subject: str, body: str, html: str = "") -> SendResult:
    """Through Django's email backend (console in dev, SMTP or an anymail ESP by settings); with `html`, a
    multipart/alternative message whose text part is `body`."""
    message_id = make_msgid(domain="trustguard.local")
    email = EmailMultiAlternatives(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[to],
                                   headers={"Message-ID": message_id})
    if html:
        email.attach_alternative(html, "text/html")
    email.connection = get_connection(fail_silently=False)
    if email.send() != 1:
        raise SendFailed("the email backend did not accept the message")
    # anymail backends report the ESP's id; plain SMTP keeps the Message-ID we set.
    status = getattr(email, "anymail_status", None)
    provider_id = getattr(status, "message_id", None) if status is not None else None
    backend = settings.EMAIL_BACKEND.rsplit(".", 2)[-2]
    return SendResult(provider=f"email:{backend}", provider_message_id=str(provider_id or message_id))


# --- SMS -----------------------------------------------------------------------------------------

class SmsProvider(Protocol):
    name: str

    def send(self, *, to: str, body: str) -> SendResult: ...


class ConsoleSmsProvider:
    """Development: print to stdout (like Django's console email backend), never to the logs."""

    name = "console"

    def send(self, *, to: str, body: str) -> SendResult:
        sys.stdout.write(f"--- SMS to {mask_phone(to)} ---\n{body}\n---\n")
        sys.stdout.flush()
        return SendResult(provider="sms:console")


class TwilioSmsProvider:
    name = "twilio"

    def send(self, *, to: str, body: str) -> SendResult:
        from twilio.base.exceptions import TwilioException, TwilioRestException
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN,
                        http_client=TwilioHttpClient(timeout=settings.WEBHOOK_TIMEOUT_SECONDS))
        if settings.TWILIO_BASE_URL:  # a local receiver in tests, a regional edge in production
            client.api.base_url = settings.TWILIO_BASE_URL.rstrip("/")
        try:
            sent = client.messages.create(to=to, from_=settings.TWILIO_FROM_NUMBER, body=body)
        except TwilioRestException as exc:
            raise SendFailed(f"Twilio refused the message: HTTP {exc.status} code {exc.code}",
                             status_code=exc.status) from None
        except (TwilioException, OSError) as exc:
            raise SendFailed(f"Twilio unreachable: {type(exc).__name__}") from None
        cost = None
        if sent.price not in (None, ""):
            try:
                cost = abs(Decimal(str(sent.price)))
            except InvalidOperation:
                cost = None
        return SendResult(provider="sms:twilio", provider_message_id=sent.sid or "", cost=cost,
                          cost_currency=(sent.price_unit or "")[:3])


def sms_provider() -> SmsProvider:
    return TwilioSmsProvider() if settings.SMS_PROVIDER == "twilio" else ConsoleSmsProvider()


# --- webhooks ------------------------------------------------------------------------------------

def webhook_headers(*, event_id: str, payload: str, secrets: list[str], at: datetime) -> dict[str, str]:
    """Standard Webhooks headers; one v1 signature per active secret (two during a rotation)."""
    signatures = [Webhook(secret).sign(msg_id=event_id, timestamp=at, data=payload) for secret in secrets]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


# Webhook connections are kept per worker thread (httpx clients are not shared across threads here) and
# per checked target: the pool key is (scheme, host name, checked IP, port), so a kept connection always
# goes to the address the SSRF guard approved for that very host name (and its TLS server name).
_KEEPALIVE_SECONDS = 2.0  # below common server idle timeouts (Node: 5 s), so a kept connection is rarely stale
_CLIENTS_PER_THREAD = 32  # least recently used clients beyond this are closed
_BODY_READ_LIMIT = 64 * 1024  # a reply body up to this is read (so the connection can be kept); longer: dropped
_local = threading.local()
_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def _shared_ssl_context() -> ssl.SSLContext:
    # Building a context loads the CA bundle (milliseconds of CPU): once per process, not per request.
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = httpx.create_ssl_context(trust_env=False)
        return _ssl_context


def _client_for(target: ResolvedTarget) -> httpx.Client:
    clients: OrderedDict[tuple[str, str, str, int], httpx.Client] | None = getattr(_local, "clients", None)
    if clients is None:
        clients = _local.clients = OrderedDict()
    key = (target.scheme, target.host, target.address, target.port)
    client = clients.get(key)
    if client is None:
        # trust_env=False: an HTTP(S)_PROXY variable must not route around the pinned address.
        client = httpx.Client(verify=_shared_ssl_context(), follow_redirects=False, trust_env=False,
                              limits=httpx.Limits(max_connections=4, max_keepalive_connections=1,
                                                  keepalive_expiry=_KEEPALIVE_SECONDS))
        clients[key] = client
        while len(clients) > _CLIENTS_PER_THREAD:
            clients.popitem(last=False)[1].close()
    clients.move_to_end(key)
    return client


def _read_small_body(response: httpx.Response, deadline: float) -> None:
    """Read a short reply so its connection can serve the next request; give up on a long or slow one
    (httpx then closes that connection). The delivery's outcome is the status, already known."""
    read = 0
    try:
        for chunk in response.iter_raw(16 * 1024):
            read += len(chunk)
            if read > _BODY_READ_LIMIT or time.monotonic() > deadline:
                return
    except httpx.HTTPError:
        return


def webhook_post(*, url: str, event_id: str, envelope: dict[str, object], secrets: list[str], at: datetime) -> SendResult:
    """POST the event; any non-2xx, redirect, timeout or refused target is a failure (post_pinned says how)."""
    payload = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
    headers = {
        **webhook_headers(event_id=event_id, payload=payload, secrets=secrets, at=at),
        "content-type": "application/json",
        "user-agent": "TrustGuard-Webhooks/1.0",
    }
    status = post_pinned(url=url, content=payload.encode(), headers=headers)
    if not 200 <= status < 300:
        raise SendFailed(f"receiver answered HTTP {status}", status_code=status)
    return SendResult(provider="webhook", status_code=status)


def post_pinned(*, url: str, content: bytes, headers: dict[str, str]) -> int:
    """POST to an outside URL (a webhook receiver, a push service); return the HTTP status. Timeouts, refused
    targets and broken connections raise SendFailed.

    The host is resolved and checked again here (DNS may have changed since the URL was saved),
    and the connection goes to the checked address with the original Host and TLS server name. The
    connection is kept for the next request to the same checked target from this thread; a request
    whose connection is closed or reset under it (typically a kept one the receiver dropped) is sent
    once more on a fresh connection at once. (Should the first have reached the receiver after all, that
    is a duplicate, which at least once allows: receivers de-duplicate by webhook-id.)
    """
    try:
        target = resolve_target(url)
    except TargetRefused as exc:
        raise SendFailed(f"target refused: {exc}") from None
    default_port = 443 if target.scheme == "https" else 80
    headers = {**headers, "host": target.host if target.port == default_port else f"{target.host}:{target.port}"}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    client = _client_for(target)
    for attempt in (1, 2):
        try:
            with client.stream("POST", target.pinned_url(url), content=content, headers=headers,
                               extensions=extensions, timeout=httpx.Timeout(timeout)) as response:
                status = response.status_code
                _read_small_body(response, time.monotonic() + timeout)
            break
        except httpx.TimeoutException:
            raise SendFailed(f"timed out after {timeout}s") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            # Closed or reset under us: typically a kept connection the receiver (or a proxy) dropped.
            if attempt == 2:
                raise SendFailed(f"connection failed: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise SendFailed(f"connection failed: {type(exc).__name__}") from None
    return status
