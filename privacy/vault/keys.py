"""Subjects and their data keys: sealing and unsealing one value, and crypto-shredding a subject."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.db import IntegrityError, transaction
from django.utils import timezone

from trustguard import crypto

from ..models import Subject, SubjectIdentifier, SubjectRecord
from .blind_index import identifier_digests

SEALED = "$sealed"
CONTACT_FIELDS = ("email", "phone", "name")


class FieldUnreadable(Exception):
    """A sealed field that cannot be read: names the field and the reason, never the value."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} cannot be read: {reason}")
        self.field = field
        self.reason = reason


ERASED = "the data subject was erased"
TAMPERED = "the stored value was altered (authentication failed)"
UNKNOWN_SUBJECT = "its data key is missing"


# --- subjects and their keys ----------------------------------------------------------------------

def subjects_find(*, tenant_id: int, email: str = "", phone: str = "") -> list[Subject]:
    """The live (not erased) subjects an email or phone identifies in one tenant."""
    digests = identifier_digests(email=email, phone=phone)
    if not digests:
        return []
    ids: set[Any] = set()
    for kind, digest in digests:
        ids.update(SubjectIdentifier.objects.filter(tenant_id=tenant_id, kind=kind, digest=digest)
                   .values_list("subject_id", flat=True))
    return list(Subject.objects.filter(pk__in=ids, erased_at__isnull=True).order_by("created_at"))


def subject_for(*, tenant_id: int, email: str = "", phone: str = "") -> Subject:
    """The subject these identifiers name (created with a fresh data key when none does)."""
    found = subjects_find(tenant_id=tenant_id, email=email, phone=phone)
    fresh = not found
    subject = found[0] if found else Subject.objects.create(
        tenant_id=tenant_id, wrapped_key=crypto.encrypt(Fernet.generate_key().decode()))
    for kind, digest in identifier_digests(email=email, phone=phone):
        identifier: SubjectIdentifier | None
        try:
            with transaction.atomic():  # a savepoint: a concurrent insert of the same identifier is no error
                identifier, _ = SubjectIdentifier.objects.get_or_create(tenant_id=tenant_id, kind=kind, digest=digest,
                                                                        defaults={"subject": subject})
        except IntegrityError:
            identifier = SubjectIdentifier.objects.filter(tenant_id=tenant_id, kind=kind, digest=digest).first()
        if fresh and identifier is not None and identifier.subject_id != subject.pk:
            # Another request created this customer at the same moment and won the identifier: use theirs (nothing
            # is sealed under ours yet), so that every case of the customer is found and erased together.
            Subject.objects.filter(pk=subject.pk).delete()
            subject, fresh = identifier.subject, False
    return subject


def record_link(*, subject: Subject, record_type: str, record_id: object) -> None:
    SubjectRecord.objects.get_or_create(subject=subject, tenant_id=subject.tenant_id, record_type=record_type,
                                        record_id=str(record_id))


def records_matching(*, tenant_id: int, record_type: str, email: str = "", phone: str = "") -> list[str]:
    """Ids of the records holding data of the subject(s) this email or phone names (blind index, no decryption)."""
    subjects = subjects_find(tenant_id=tenant_id, email=email, phone=phone)
    return list(SubjectRecord.objects.filter(subject__in=subjects, record_type=record_type)
                .values_list("record_id", flat=True))


def _fernet(subject: Subject, field: str) -> Fernet:
    if subject.erased_at is not None or not subject.wrapped_key:
        raise FieldUnreadable(field, ERASED)
    try:
        return _unwrap(subject.wrapped_key)
    except crypto.SecretUnreadable as exc:
        raise FieldUnreadable(field, f"its data key cannot be unwrapped with the configured field keys "
                                     f"(key id {exc.key_id or '?'} is not configured)") from exc


def _unwrap(wrapped: str) -> Fernet:
    # Keyed by the wrapped value: a re-wrap (rotation) or an erasure never meets a stale cache entry.
    # ... and by the configured ring: a key dropped from TRUSTGUARD_FIELD_KEYS stops unwrapping at once.
    cache_key = (wrapped, tuple(crypto.field_keys()))
    cached = _UNWRAPPED.get(cache_key)
    if cached is None:
        cached = Fernet(crypto.decrypt(wrapped).encode())
        if len(_UNWRAPPED) > 1024:
            _UNWRAPPED.clear()
        _UNWRAPPED[cache_key] = cached
    return cached


_UNWRAPPED: dict[tuple[str, tuple[str, ...]], Fernet] = {}


def seal(subject: Subject, value: Any, *, field: str) -> dict[str, str]:
    token = _fernet(subject, field).encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    return {SEALED: f"{subject.pk}:{token.decode()}"}


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {SEALED} and isinstance(value[SEALED], str)


class Subjects:
    """Subjects read once per page: unseal many values with one query per subject at most."""

    def __init__(self, preload: Iterable[Subject] = ()) -> None:
        self._by_id: dict[str, Subject | None] = {str(s.pk): s for s in preload}

    def get(self, subject_id: str) -> Subject | None:
        if subject_id not in self._by_id:
            self._by_id[subject_id] = Subject.objects.filter(pk=subject_id).first() if _uuid_like(subject_id) else None
        return self._by_id[subject_id]

    def prefetch(self, values: Iterable[Any]) -> None:
        wanted = {subject_id_of(v) for v in values if is_sealed(v)} - set(self._by_id) - {""}
        wanted = {w for w in wanted if _uuid_like(w)}
        if wanted:
            found = {str(s.pk): s for s in Subject.objects.filter(pk__in=wanted)}
            for w in wanted:
                self._by_id[w] = found.get(w)


def _uuid_like(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-fA-F-]{32,36}", value))


def subject_id_of(sealed: Any) -> str:
    return str(sealed[SEALED]).partition(":")[0] if is_sealed(sealed) else ""


def unseal(sealed: dict[str, str], *, field: str, subjects: Subjects | None = None) -> Any:
    """The value sealed in `sealed`; FieldUnreadable naming `field` otherwise."""
    subject_id, _, token = sealed[SEALED].partition(":")
    subject = (subjects or Subjects()).get(subject_id)
    if subject is None:
        raise FieldUnreadable(field, UNKNOWN_SUBJECT)
    fernet = _fernet(subject, field)
    try:
        return json.loads(fernet.decrypt(token.encode()))
    except (InvalidToken, ValueError) as exc:
        raise FieldUnreadable(field, TAMPERED) from exc


def subject_erase_key(subject: Subject) -> None:
    """Crypto-shred: destroy the wrapped data key and the identifiers (the caller holds the transaction)."""
    Subject.objects.filter(pk=subject.pk).update(wrapped_key="", erased_at=timezone.now(), held_until=None)
    SubjectIdentifier.objects.filter(subject=subject).delete()
    _UNWRAPPED.clear()
    subject.wrapped_key, subject.erased_at, subject.held_until = "", timezone.now(), None
