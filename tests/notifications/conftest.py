"""Real receivers on 127.0.0.1 (HTTP for webhooks and the Twilio API, SMTP for email), and helpers."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import transaction

from notifications.breakers import breaker_reset
from notifications.deliveries.attempts import delivery_attempt
from notifications.models import Delivery, DeliveryStatus
from notifications.relay import outbox_relay

from .push_standin import push_service  # noqa: F401  (a fixture: the push service stand-in)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A real HTTP server. `statuses` are answered in turn (then `default_status`); `hold` blocks requests."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    response_body: Callable[[Received], bytes] | None = None
    status_by_path: dict[str, int] = field(default_factory=dict)
    hold: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self, path: str) -> int:
        with self.lock:
            if path in self.status_by_path:
                return self.status_by_path[path]
            return self.statuses.pop(0) if self.statuses else self.default_status


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    state: dict[str, HttpReceiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = state["r"]
            length = int(self.headers.get("Content-Length") or 0)
            got = Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            with receiver.lock:
                receiver.requests.append(got)
            receiver.arrived.set()
            if receiver.hold is not None:
                receiver.hold.wait(30)
            status = receiver.next_status(got.path)
            body = receiver.response_body(got) if receiver.response_body else b"{}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["r"] = HttpReceiver(url=f"http://127.0.0.1:{server.server_port}/hooks")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["r"]
    if state["r"].hold is not None:
        state["r"].hold.set()
    server.shutdown()
    server.server_close()


@dataclass
class SmtpReceiver:
    host: str
    port: int
    messages: list[Any] = field(default_factory=list)


@pytest.fixture
def smtp_receiver(settings: Any) -> Iterator[SmtpReceiver]:
    from email import message_from_bytes

    received = SmtpReceiver(host="127.0.0.1", port=_free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
            return "250 OK"

    controller = Controller(Handler(), hostname=received.host, port=received.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = received.host, received.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    breaker_reset("email:smtp")
    yield received
    controller.stop()
    breaker_reset("email:smtp")


def email_part(message: Any, content_type: str = "text/plain") -> str:
    """The decoded text (or HTML) part of a received email, multipart or not."""
    for part in message.walk():
        if part.get_content_type() == content_type:
            payload = part.get_payload(decode=True)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no {content_type} part in {message['Subject']!r}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _notification_settings(settings: Any) -> Iterator[None]:
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receivers live on loopback
    settings.DELIVERY_MAX_ATTEMPTS = 5
    settings.DELIVERY_BACKOFF_BASE_SECONDS = 10
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    for target in ("email:smtp", "email:locmem", "sms:console", "sms:twilio"):
        breaker_reset(target)
    yield


def relay() -> int:
    return outbox_relay()


def deliver(delivery: Delivery | int) -> str:
    return delivery_attempt(delivery_id=delivery if isinstance(delivery, int) else delivery.pk)


def pending(kind: str = "webhook") -> list[Delivery]:
    return list(Delivery.objects.filter(status=DeliveryStatus.PENDING, kind=kind).order_by("event_seq", "id"))


def in_transaction(func: Callable[[], Any]) -> Any:
    with transaction.atomic():
        return func()
