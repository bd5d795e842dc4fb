"""A push service stand-in on 127.0.0.1, and a browser's side of a subscription (a real P-256 key pair).

The stand-in does what a push service does before it accepts a push (RFC 8030/8292): it checks the VAPID
Authorization header (an ES256 JWT, verified against the server's public key given in `k`, with `aud` the
endpoint's origin and an `exp` in the next 24 h), and it checks the body is aes128gcm. It then does what the
browser does: decrypts the payload (RFC 8291) with the subscription's private key and auth secret. A push that
fails any check is answered 401/400 and recorded in `rejected` with the reason.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from notifications.breakers import breaker_reset
from trustguard.vapid import generate_private_pem


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserSubscription:
    """The browser's half: its P-256 key pair and auth secret; `as_json()` is PushSubscription.toJSON()."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def token(self) -> str:
        return self.endpoint.rsplit("/", 1)[-1]

    def as_json(self) -> dict[str, Any]:
        public = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                             serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": {"p256dh": b64url(public),
                                                                            "auth": b64url(self.auth)}}


@dataclass
class Push:
    token: str
    headers: dict[str, str]
    claims: dict[str, Any]
    payload: dict[str, Any]


@dataclass
class PushServiceStandIn:
    origin: str
    vapid_public_key: str = ""
    browsers: dict[str, BrowserSubscription] = field(default_factory=dict)
    received: list[Push] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    status_by_token: dict[str, int] = field(default_factory=dict)
    default_status: int = 201
    lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0

    @property
    def breaker(self) -> str:
        return "push:" + self.origin.split("://", 1)[1]

    def new_browser(self) -> BrowserSubscription:
        with self.lock:
            self._count += 1
            browser = BrowserSubscription(endpoint=f"{self.origin}/wpush/v2/{self._count:04d}-{os.urandom(6).hex()}")
            self.browsers[browser.token] = browser
        return browser

    def check(self, token: str, headers: dict[str, str], body: bytes) -> Push:
        """The push service's checks, then the browser's decryption; ValueError naming what failed."""
        browser = self.browsers.get(token)
        if browser is None:
            raise LookupError("no such subscription")
        scheme, _, params = headers.get("authorization", "").partition(" ")
        if scheme != "vapid":
            raise ValueError(f"Authorization scheme {scheme!r}, not vapid")
        values = dict(part.strip().split("=", 1) for part in params.split(","))
        if values.get("k") != self.vapid_public_key:
            raise ValueError("k is not the server's VAPID public key")
        header_b64, claims_b64, signature_b64 = values["t"].split(".")
        header = json.loads(unb64url(header_b64))
        if header.get("alg") != "ES256":
            raise ValueError(f"JWT alg {header.get('alg')!r}")
        signature = unb64url(signature_b64)
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(values["k"]))
        try:
            public_key.verify(encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                                   int.from_bytes(signature[32:], "big")),
                              f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise ValueError("the VAPID JWT's signature does not verify") from None
        claims = json.loads(unb64url(claims_b64))
        if claims.get("aud") != self.origin:
            raise ValueError(f"aud {claims.get('aud')!r} is not the endpoint's origin {self.origin!r}")
        if not time.time() < int(claims.get("exp", 0)) <= time.time() + 24 * 3600:
            raise ValueError("exp is not within the next 24 h")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
            raise ValueError("sub is not a mailto: or https: contact")
        if headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers:
            raise ValueError("not aes128gcm, or no TTL")
        plain = http_ece.decrypt(body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm")
        return Push(token=token, headers=headers, claims=claims, payload=json.loads(plain))


@pytest.fixture
def push_service(settings: Any) -> Iterator[PushServiceStandIn]:
    """The stand-in, and the server's VAPID keys (a fresh pair) that it checks pushes against."""
    from trustguard.vapid import parse_vapid_keys

    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = generate_private_pem(), ""
    settings.VAPID_SUBJECT = "mailto:ops@trustguard.example"
    state: dict[str, PushServiceStandIn] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            service = state["s"]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            token = self.path.rsplit("/", 1)[-1]
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                push = service.check(token, headers, body)
            except LookupError:
                status = 404
            except Exception as exc:  # any failed check is a refusal, with its reason kept
                with service.lock:
                    service.rejected.append(f"{type(exc).__name__}: {exc}")
                status = 401 if "JWT" in str(exc) or "VAPID" in str(exc) else 400
            else:
                with service.lock:
                    service.received.append(push)
                status = service.status_by_token.get(token, service.default_status)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    keys = parse_vapid_keys(settings.VAPID_PRIVATE_KEY)
    assert keys is not None
    state["s"] = PushServiceStandIn(origin=f"http://127.0.0.1:{server.server_port}", vapid_public_key=keys.public_key)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    breaker_reset(state["s"].breaker)
    yield state["s"]
    server.shutdown()
    server.server_close()
    breaker_reset(state["s"].breaker)
