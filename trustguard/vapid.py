"""Web Push keys (VAPID, RFC 8292): read from the environment, checked at start-up, generated for the demo.

TRUSTGUARD_VAPID_PRIVATE_KEY (or _FILE) is a P-256 private key: PEM (what `openssl ecparam -name prime256v1
-genkey` or py_vapid's `vapid --gen` write) or the base64url 32-byte raw key that web-push libraries print.
TRUSTGUARD_VAPID_PUBLIC_KEY is optional: it is derived from the private key, and when given it must match (a
mismatch would make every browser subscription fail, so it stops start-up instead). The public key goes to the
browser as the `applicationServerKey` (base64url, uncompressed point).

With DEBUG=1 and no key, `seed_demo` writes one to var/vapid-private.pem (mode 0600, never committed) and the
settings read it from there; production sets the variables.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PRIVATE_VARIABLE = "TRUSTGUARD_VAPID_PRIVATE_KEY"
PUBLIC_VARIABLE = "TRUSTGUARD_VAPID_PUBLIC_KEY"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VapidKeys:
    private_key: ec.EllipticCurvePrivateKey
    public_key: str  # base64url of the uncompressed point: the browser's applicationServerKey


def public_key_text(key: ec.EllipticCurvePublicKey) -> str:
    return b64url(key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def _load_private(raw: str) -> ec.EllipticCurvePrivateKey:
    text = raw.strip()
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            data = b64url_decode(text)
            if len(data) == 32:
                key = ec.derive_private_key(int.from_bytes(data, "big"), ec.SECP256R1())
            else:  # base64url DER, as py_vapid also accepts
                key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm):
        raise ImproperlyConfigured(f"{PRIVATE_VARIABLE}: not a P-256 private key (PEM, or base64url of the 32-byte "
                                   "raw key)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ImproperlyConfigured(f"{PRIVATE_VARIABLE}: Web Push needs a P-256 (prime256v1) EC key")
    return key


def parse_vapid_keys(private: str, public: str = "") -> VapidKeys | None:
    """The keys, or None when no private key is set; a malformed or mismatched key stops start-up naming it."""
    if not private.strip():
        if public.strip():
            raise ImproperlyConfigured(f"{PUBLIC_VARIABLE} is set but {PRIVATE_VARIABLE} is not: pushes are signed "
                                       "with the private key")
        return None
    key = _load_private(private)
    derived = public_key_text(key.public_key())
    if public.strip() and public.strip().rstrip("=") != derived:
        raise ImproperlyConfigured(f"{PUBLIC_VARIABLE} does not belong to {PRIVATE_VARIABLE} (leave it unset to derive "
                                   "it from the private key)")
    return VapidKeys(private_key=key, public_key=derived)


@lru_cache(maxsize=4)
def _cached(private: str, public: str) -> VapidKeys | None:
    return parse_vapid_keys(private, public)


def vapid_keys() -> VapidKeys | None:
    """The configured keys (None: push is not set up on this server)."""
    return _cached(settings.VAPID_PRIVATE_KEY or "", settings.VAPID_PUBLIC_KEY or "")


def generate_private_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def demo_keys_ensure() -> Path | None:
    """DEBUG only, when no key is configured: write one to VAPID_KEY_FILE (0600) and use it in this process too.
    Returns the file written, None when nothing was needed (or allowed)."""
    if not settings.DEBUG or settings.VAPID_PRIVATE_KEY:
        return None
    path = Path(settings.VAPID_KEY_FILE)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(generate_private_pem())
    settings.VAPID_PRIVATE_KEY = path.read_text()
    return path

