"""Field keys: encryption at rest for what we must read again (TOTP seeds, webhook signing secrets, one-time
codes waiting to be sent, stored API responses that carry a secret).

One key ring, TRUSTGUARD_FIELD_KEYS (or _FILE): comma-separated Fernet keys, newest first. The first key
encrypts; every key decrypts. A value is stored as `<key id>:<Fernet token>`, the key id being a short hash
of the key, so decrypting picks its key directly, an unreadable value names the key it needs, and
`manage.py rotate_field_keys` finds the values still under an older key with a plain prefix filter.
Rotation: prepend a new key, run rotate_field_keys, then drop the old key. Fernet (AES-128-CBC +
HMAC-SHA256, from `cryptography`) is authenticated: a value altered in the database does not decrypt.

With DEBUG=1 and no keys, one key is derived from SECRET_KEY (development only); with DEBUG=0 the system
check trustguard.E020 refuses to start without real keys. Values written before field keys existed
(a bare Fernet token under TRUSTGUARD_WEBHOOK_SECRET_KEY, or the key derived from SECRET_KEY) still
decrypt, and rotate_field_keys moves them under the newest key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_VARIABLE = "TRUSTGUARD_FIELD_KEYS"
_SEPARATOR = ":"


class SecretUnreadable(Exception):
    """A stored value that the configured field keys cannot decrypt: the key it was written under is not
    configured (changed or lost, e.g. a database restored without it), or the stored value was altered.
    Names the key (its id), never the value."""

    def __init__(self, key_id: str = "") -> None:
        which = f"key id {key_id}, not among them" if key_id else "no configured key matches"
        super().__init__(f"a stored secret cannot be decrypted with the configured {KEY_VARIABLE} ({which}): the keys "
                         "differ from the ones it was stored with (see docs/BACKUP.md)")
        self.key_id = key_id


def derive_key(material: str) -> str:
    """A Fernet key derived from a non-Fernet secret (domain-separated from other uses of SECRET_KEY)."""
    digest = hashlib.sha256(b"trustguard:notifications:fernet:" + material.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def parse_keys(raw: str | None, *, variable: str = KEY_VARIABLE) -> list[str]:
    """The keys of a TRUSTGUARD_FIELD_KEYS value, newest first; a malformed key stops start-up naming the variable."""
    keys = [part.strip() for part in (raw or "").split(",") if part.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, binascii.Error):
            raise ImproperlyConfigured(
                f"{variable}: key {position} is not a Fernet key (32 bytes, url-safe base64; make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)") from None
    if len(set(keys)) != len(keys):
        raise ImproperlyConfigured(f"{variable} lists the same key twice")
    return keys


def key_id(key: str) -> str:
    """A short public id of a key (8 hex digits): names it in errors and in the values it encrypted."""
    return hashlib.sha256(b"trustguard:field-key-id:" + key.encode()).hexdigest()[:8]


@lru_cache(maxsize=8)
def _ring(keys: tuple[str, ...]) -> dict[str, Fernet]:
    return {key_id(key): Fernet(key.encode()) for key in keys}


@lru_cache(maxsize=8)
def _legacy(materials: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(m.encode()) if _is_fernet_key(m) else Fernet(derive_key(m).encode()) for m in materials])


def _is_fernet_key(value: str) -> bool:
    try:
        Fernet(value.encode())
    except (ValueError, binascii.Error):
        return False
    return True


def field_keys() -> list[str]:
    keys = list(settings.FIELD_KEYS)
    if not keys:
        raise ImproperlyConfigured(f"{KEY_VARIABLE} (or {KEY_VARIABLE}_FILE) is required when DEBUG=0")
    return keys


def current_key_id() -> str:
    return key_id(field_keys()[0])


def encrypt(value: str) -> str:
    """`value` encrypted under the newest field key, as `<key id>:<token>`."""
    return _seal(value.encode())


def decrypt(stored: str) -> str:
    """The value of `encrypt(value)` under any configured key (or a value from before field keys existed)."""
    return _open(stored).decode()


def _seal(data: bytes) -> str:
    newest = field_keys()[0]
    kid = key_id(newest)
    return kid + _SEPARATOR + _ring((newest,))[kid].encrypt(data).decode()


def _open(stored: str) -> bytes:
    kid, sep, token = stored.partition(_SEPARATOR)
    if not sep:
        return _open_legacy(stored)
    fernet = _ring(tuple(field_keys())).get(kid)
    if fernet is None:
        raise SecretUnreadable(kid)
    try:
        return fernet.decrypt(token.encode())
    except InvalidToken as exc:
        raise SecretUnreadable(kid) from exc


def _open_legacy(token: str) -> bytes:
    """A bare Fernet token written before field keys existed: under TRUSTGUARD_WEBHOOK_SECRET_KEY, else SECRET_KEY."""
    materials = tuple(m for m in (*field_keys(), settings.WEBHOOK_SECRET_KEY, settings.SECRET_KEY) if m)
    try:
        return _legacy(materials).decrypt(token.encode())
    except InvalidToken as exc:
        raise SecretUnreadable() from exc


def needs_rotation(stored: str) -> bool:
    """True when `stored` is not under the newest key (rotate_field_keys re-encrypts it)."""
    return not stored.startswith(current_key_id() + _SEPARATOR)


def reencrypt(stored: str) -> str:
    """`stored` under the newest key (unchanged if it already is). Raises SecretUnreadable."""
    return encrypt(decrypt(stored)) if needs_rotation(stored) else stored


# Bytes (stored API responses): the same ring, with a marker telling encrypted bodies from older plain ones.
_BYTES_MARKER = b"tgfk1$"


def encrypt_bytes(value: bytes) -> bytes:
    return _BYTES_MARKER + _seal(value).encode()


def decrypt_bytes(stored: bytes) -> bytes:
    """The bytes of encrypt_bytes; bytes stored before encryption (no marker) come back as they are."""
    if not stored.startswith(_BYTES_MARKER):
        return stored
    return _open(stored[len(_BYTES_MARKER):].decode())


# Every column that holds values of encrypt(): (model label, field, filter). `manage.py rotate_field_keys`
# re-encrypts them; a new encrypted column is one more line here. (Stored API responses are not listed: they
# live 24 h, so an old key retired a day after the rotation has nothing left under it.)
ENCRYPTED_FIELDS: tuple[tuple[str, str, dict[str, object]], ...] = (
    ("accounts.SealedTOTPDevice", "key_encrypted", {}),
    ("notifications.WebhookEndpoint", "secret_encrypted", {}),
    ("notifications.WebhookEndpoint", "previous_secret_encrypted", {}),
    ("notifications.Message", "body", {"sensitive": True}),
    ("notifications.PushSubscription", "subscription_encrypted", {}),
    # Data subjects' keys (privacy.vault): re-wrapping them is the whole rotation of customers' personal data.
    ("privacy.Subject", "wrapped_key", {}),
)
