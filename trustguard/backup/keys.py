"""The keys that live outside the database, what is lost without each, and fingerprints to tell them apart.

A database backup is only half a backup: what the database holds under these keys (hashed API keys,
encrypted TOTP seeds and webhook secrets, the sealed audit trail and its signed checkpoints and anchors)
is useless without them, and they are never in the database. docs/BACKUP.md has the same table for
operators; a test keeps the two in step. A new key is one more `SecretKey` here and one more row there.

A manifest records a fingerprint of each key the backup was taken with, so a restore can say which
key differs and what that costs, before anyone finds out from a wave of 401s. A fingerprint is
PBKDF2-HMAC-SHA256 of the key (a fixed salt, 100,000 rounds, 8 bytes): it tells two keys apart and
makes guessing a weak key from it slow; it reveals nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings

_SALT = b"trustguard.backup.key-fingerprint"
_ROUNDS = 100_000


@dataclass(frozen=True)
class SecretKey:
    variable: str  # the environment variable (VARIABLE_FILE also works)
    setting: str  # the settings attribute that holds it (a string, a list of keys or a key ring, newest first)
    lost: str  # what stops working when it is lost
    derived_from: str = ""  # unset, the application derives it from this setting
    fallbacks: str = ""  # the setting of older keys that still decrypt or verify (a rotation in progress)


KEYS: tuple[SecretKey, ...] = (
    SecretKey(
        "SECRET_KEY", "SECRET_KEY",
        "sessions (everyone signs in again), password-reset and attachment links; the signatures of the audit "
        "trail's retention checkpoints (verify_audit fails on a pruned chain unless the old key is listed in "
        "SECRET_KEY_FALLBACKS); and every key below that was left unset, because it is derived from this one",
        fallbacks="SECRET_KEY_FALLBACKS",
    ),
    SecretKey(
        "TRUSTGUARD_CREDENTIAL_PEPPER", "CREDENTIAL_PEPPER",
        "every API key and personal token (they are stored as HMACs under it): all answer 401 and must be "
        "issued again; one-time codes in flight",
        derived_from="SECRET_KEY",
    ),
    SecretKey(
        "TRUSTGUARD_AUDIT_KEY", "AUDIT_KEYS",
        "the proof behind the audit trail: verify_audit can no longer check the events sealed with it (each chain "
        "reports a key TRUSTGUARD_AUDIT_KEY does not hold), so altered or forged events can no longer be told from "
        "real ones; the events stay readable",
    ),
    SecretKey(
        "TRUSTGUARD_AUDIT_SIGNING_KEY", "AUDIT_SIGNING_KEYS",
        "the anchors signed with it: verify_audit --anchors refuses them, so a cut-off or emptied audit chain "
        "from before the loss can no longer be proven; new anchors need a new key",
    ),
    SecretKey(
        "TRUSTGUARD_FIELD_KEYS", "FIELD_KEYS",
        "everything encrypted at rest under them: every person's TOTP seed (step-up fails until an operator resets "
        "each authenticator and its owner enrols again), the webhook signing secrets (deliveries fail with an error "
        "naming the key id until each endpoint's secret is rotated and given to its receiver), one-time codes "
        "waiting to be sent, and the stored responses of idempotent requests (a retry gets 409); and every "
        "customer's personal data (their data keys are wrapped under them: contact and personal payload fields "
        "read as unreadable, named by field, on every page and in subject exports)",
    ),
    SecretKey(
        "TRUSTGUARD_BLIND_INDEX_KEY", "BLIND_INDEX_KEY",
        "searching cases by the customer's email or phone (the blind indexes are HMACs under it): nothing is found "
        "until `manage.py privacy_reindex` rebuilds them under the new key; no data is lost",
        derived_from="SECRET_KEY",
    ),
)


def key_values(key: SecretKey) -> list[str]:
    """The key material in use (a derived key: the material it is derived from), newest first, then its fallbacks."""
    value = getattr(settings, key.setting, None) or (getattr(settings, key.derived_from, None) if key.derived_from else None)
    # A key ring is [(key id, secret), ...]: the secrets are the material.
    values = [] if not value else [value] if isinstance(value, str) else [
        str(v[1]) if isinstance(v, tuple | list) else str(v) for v in value]
    if key.fallbacks:
        values += [str(v) for v in getattr(settings, key.fallbacks, None) or []]
    return values


def fingerprint(value: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", value.encode(), _SALT, _ROUNDS, dklen=8).hex()


def key_fingerprints() -> dict[str, list[str]]:
    """{variable: [fingerprint, ...]} of every key in use now."""
    cache: dict[str, str] = {}  # derived keys share their material's fingerprint: compute it once
    return {key.variable: [cache.setdefault(v, fingerprint(v)) for v in key_values(key)] for key in KEYS}


def keys_missing(recorded: dict[str, list[str]]) -> list[str]:
    """What a restore loses: one sentence per key the backup was taken with that is not held now.

    Every recorded fingerprint must be held, older keys of a rotation included: data in an old backup
    may still be under a key that was retired after the backup was taken.
    """
    current = key_fingerprints()
    problems = []
    for key in KEYS:
        wanted = recorded.get(key.variable) or []
        if any(fp not in current.get(key.variable, []) for fp in wanted):
            problems.append(f"{key.variable} differs from the one this backup was taken with: lost without it: {key.lost}")
    return problems
