"""The audit trail's keys, held outside the database (docs/AUDIT.md).

- The *audit key ring* (settings.AUDIT_KEYS, TRUSTGUARD_AUDIT_KEY): each event's hash is an HMAC-SHA256 under the
  newest key, over the previous hash and the event; the event stores the id of the key that sealed it, and every
  key of the ring verifies. Without a key nobody can compute a hash the verification accepts, so a row forged or
  re-hashed by someone who can write to the database (even its superuser) is found.
- The *signing key ring* (settings.AUDIT_SIGNING_KEYS, TRUSTGUARD_AUDIT_SIGNING_KEY): Ed25519 keys that sign the
  anchors written outside the database (audit.anchors). The newest signs; every key's public half verifies.

Both rings are `[(key id, secret), ...]`, newest first. Keys are looked up per call from settings (tests override
them), through a small cache keyed by the ring itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Ring = tuple[tuple[str, str], ...]


def _ring(setting: str) -> Ring:
    return tuple((str(key_id), str(secret)) for key_id, secret in getattr(settings, setting, None) or [])


@lru_cache(maxsize=8)
def _macs(ring: Ring) -> dict[str, hmac.HMAC]:
    """{key id: an HMAC-SHA256 keyed and empty}: copying one is cheaper than keying a new one per event."""
    return {key_id: hmac.new(secret.encode(), digestmod=hashlib.sha256) for key_id, secret in ring}


def sealing_key_id() -> str:
    """The id of the newest audit key: the one that seals new events."""
    ring = _ring("AUDIT_KEYS")
    if not ring:
        raise ImproperlyConfigured("TRUSTGUARD_AUDIT_KEY is not set: audit events cannot be sealed (docs/AUDIT.md)")
    return ring[0][0]


def sealing_mac(key_id: str) -> hmac.HMAC | None:
    """An empty HMAC-SHA256 under the audit key `key_id` to update() and hexdigest(), or None when the ring lacks it."""
    mac = _macs(_ring("AUDIT_KEYS")).get(key_id)
    return None if mac is None else mac.copy()


def audit_key_ids() -> list[str]:
    return [key_id for key_id, _ in _ring("AUDIT_KEYS")]


def _private_key(variable: str, key_id: str, secret: str) -> Ed25519PrivateKey:
    try:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ImproperlyConfigured(f"{variable}: key {key_id!r} must be 32 random bytes in base64 (docs/AUDIT.md)")
    return Ed25519PrivateKey.from_private_bytes(raw)


@lru_cache(maxsize=8)
def _signing(ring: Ring) -> tuple[tuple[str, Ed25519PrivateKey], ...]:
    return tuple((key_id, _private_key("TRUSTGUARD_AUDIT_SIGNING_KEY", key_id, secret)) for key_id, secret in ring)


def signing_key() -> tuple[str, Ed25519PrivateKey]:
    """(id, private key) of the newest signing key."""
    keys = _signing(_ring("AUDIT_SIGNING_KEYS"))
    if not keys:
        raise ImproperlyConfigured("TRUSTGUARD_AUDIT_SIGNING_KEY is not set: anchors cannot be signed (docs/AUDIT.md)")
    return keys[0]


def verifying_keys() -> dict[str, Ed25519PublicKey]:
    """{key id: public key} of every signing key in the ring."""
    return {key_id: key.public_key() for key_id, key in _signing(_ring("AUDIT_SIGNING_KEYS"))}


def keys_problems() -> list[str]:
    """What is wrong with the configured rings (empty when both are usable): for the system check."""
    problems = []
    if not _ring("AUDIT_KEYS"):
        problems.append("TRUSTGUARD_AUDIT_KEY (or TRUSTGUARD_AUDIT_KEY_FILE) is required when DEBUG=0")
    if not _ring("AUDIT_SIGNING_KEYS"):
        problems.append("TRUSTGUARD_AUDIT_SIGNING_KEY (or TRUSTGUARD_AUDIT_SIGNING_KEY_FILE) is required when DEBUG=0")
    else:
        try:
            _signing(_ring("AUDIT_SIGNING_KEYS"))
        except ImproperlyConfigured as exc:
            problems.append(str(exc))
    return problems
