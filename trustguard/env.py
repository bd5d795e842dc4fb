"""Strict environment helpers: a bad value stops start-up with a message naming the variable."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, or the contents of the file named by NAME_FILE."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0 (got {raw!r})")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number (got {raw!r})") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum} (got {value})")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be <= {maximum} (got {value})")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise ImproperlyConfigured(f"{name} must list at least one value")
    return items


def env_url(name: str, schemes: tuple[str, ...]) -> str | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip()
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in schemes:
        allowed = ", ".join(s + "://" for s in schemes)
        raise ImproperlyConfigured(f"{name} must be a URL starting with one of {allowed} (got {scheme or 'no scheme'})")
    return value


def env_key_ring(name: str, *, min_length: int = 0) -> list[tuple[str, str]]:
    """A key ring: comma-separated `id:secret` (or bare `secret`, whose id is derived from it), newest first.

    The first key seals (or signs); every key verifies, so rotating is: put the new key first, keep the old
    ones after it. A key id is 1-32 letters, digits, `-` or `_`; ids are unique within the ring.
    """
    import hashlib
    import re

    raw = env_str(name) or ""
    ring: list[tuple[str, str]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        key_id, sep, secret = item.partition(":")
        if not sep:
            key_id, secret = hashlib.sha256(f"trustguard.key-id:{item}".encode()).hexdigest()[:8], item
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", key_id):
            raise ImproperlyConfigured(f"{name}: key id {key_id!r} must be 1-32 letters, digits, '-' or '_'")
        if len(secret) < min_length:
            raise ImproperlyConfigured(f"{name}: key {key_id!r} must be at least {min_length} characters")
        if any(key_id == known for known, _ in ring):
            raise ImproperlyConfigured(f"{name}: key id {key_id!r} appears twice")
        ring.append((key_id, secret))
    return ring
