"""Encryption at rest for secrets we must be able to use again (webhook signing keys, one-time codes).

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`. The key comes from
TRUSTGUARD_WEBHOOK_SECRET_KEY, or is derived from SECRET_KEY; rotating that key makes stored
webhook secrets unreadable, so rotate the webhook secrets with it.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

KEY_VARIABLE = "TRUSTGUARD_WEBHOOK_SECRET_KEY"


class SecretUnreadable(Exception):
    """A stored secret that the configured key cannot decrypt: the key changed or was lost (e.g. a
    database restored without it), or the stored value was altered. Names the key, never the value.
    A delivery that meets one fails with this message (logged, kept as its last error) and is retried."""

    def __init__(self) -> None:
        super().__init__(f"a stored secret cannot be decrypted with the configured {KEY_VARIABLE} (SECRET_KEY when "
                         "it is unset): the key differs from the one it was stored with (see docs/BACKUP.md)")


@lru_cache(maxsize=4)
def _fernet(material: str) -> Fernet:
    try:
        return Fernet(material.encode())
    except ValueError:
        # Not a Fernet key: derive one (domain-separated from other uses of SECRET_KEY).
        digest = hashlib.sha256(b"trustguard:notifications:fernet:" + material.encode()).digest()
        return Fernet(base64.urlsafe_b64encode(digest))


def fernet() -> Fernet:
    return _fernet(settings.WEBHOOK_SECRET_KEY or settings.SECRET_KEY)


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable from exc
