"""Sealing personal fields under per-subject data keys, finding them by blind index, showing them masked.

1. A subject's data key is a Fernet key (AES-128-CBC + HMAC-SHA256: authenticated), stored only wrapped by
   the field keys (trustguard.crypto). Rotating the field keys re-wraps data keys (rotate_field_keys); the
   sealed values themselves never need re-encrypting.
2. A sealed value is stored in JSON as {"$sealed": "<subject id>:<Fernet token>"}: the whole customer contact
   of an escalation, or one payload field the tenant's privacy settings mark as personal.
3. Search uses a blind index: HMAC-SHA256 under TRUSTGUARD_BLIND_INDEX_KEY of the normalised email (lower
   case) or phone (E.164, libphonenumber), so "find the case of +234 803 123 4567" never decrypts anything.
4. Reading gives either the value or FieldUnreadable naming the field and why (erased, key missing, altered):
   pages show that instead of a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from trustguard import crypto
from trustguard.logging import mask_email

from .models import PrivacySettings, Subject, SubjectIdentifier, SubjectRecord

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


# --- blind index ----------------------------------------------------------------------------------

def normalise_email(value: str) -> str:
    return value.strip().lower()


def normalise_phone(value: str) -> str | None:
    """E.164, or None when it is not a phone number (then nothing can match it)."""
    try:
        number = phonenumbers.parse(value, settings.DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def blind_index(kind: str, value: str) -> str | None:
    """HMAC-SHA256 of the normalised identifier under the blind-index key; None for an unusable value."""
    normalised = normalise_email(value) if kind == SubjectIdentifier.Kind.EMAIL else normalise_phone(value)
    if not normalised:
        return None
    key = hashlib.sha256(b"trustguard:blind-index:" + settings.BLIND_INDEX_KEY.encode()).digest()
    return hmac.new(key, f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()


def identifier_digests(*, email: str = "", phone: str = "") -> list[tuple[str, str]]:
    out = []
    for kind, value in ((SubjectIdentifier.Kind.EMAIL, email), (SubjectIdentifier.Kind.PHONE, phone)):
        digest = blind_index(kind, value) if value else None
        if digest:
            out.append((str(kind), digest))
    return out


def looks_like_identifier(text: str) -> tuple[str, str] | None:
    """("email", text) or ("phone", text) when a search box holds an email or a phone number."""
    text = text.strip()
    if "@" in text:
        return ("email", text)
    if re.fullmatch(r"[+\d][\d\s().-]{5,}", text) and normalise_phone(text):
        return ("phone", text)
    return None


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


# --- what the case holds ---------------------------------------------------------------------------

def settings_for(tenant_id: int) -> PrivacySettings:
    found = PrivacySettings.objects.filter(tenant_id=tenant_id).first()
    return found or PrivacySettings(tenant_id=tenant_id)


@dataclass
class Sealed:
    contact: dict[str, Any]
    payload: dict[str, Any]
    subject: Subject | None


def seal_case(*, tenant_id: int, contact: dict[str, str] | None, payload: dict[str, Any] | None) -> Sealed:
    """Seal a case's customer contact and personal payload fields under the customer's data key.

    The subject is the one the contact's email or phone names (a new one otherwise); a case without contact but
    with personal payload fields gets a subject of its own (found later through the case's source entity id).
    """
    contact = {k: v for k, v in (contact or {}).items() if v}
    payload = dict(payload or {})
    personal = [k for k in settings_for(tenant_id).personal_payload_fields if k in payload and not is_sealed(payload[k])]
    if not contact and not personal:
        return Sealed(contact={}, payload=payload, subject=None)
    subject = subject_for(tenant_id=tenant_id, email=str(contact.get("email") or ""),
                          phone=str(contact.get("phone") or ""))
    for key in personal:
        payload[key] = seal(subject, payload[key], field=f"payload.{key}")
    return Sealed(contact=seal(subject, contact, field="contact") if contact else {}, payload=payload, subject=subject)


def seal_note(*, tenant_id: int, value: str, field: str, near: Iterable[Any] = (), email: str = "") -> tuple[
        dict[str, str], Subject]:
    """Seal free text written about a case (a comment): under the case's own subject when `near` (its sealed
    contact and payload values) has one, so that erasing the customer shreds what was written about them too;
    else under the subject `email` names (the author; a fresh subject without one). The caller links the record."""
    subjects = Subjects()
    for candidate in near:
        subject = subjects.get(subject_id_of(candidate)) if is_sealed(candidate) else None
        if subject is not None and subject.erased_at is None:
            break
    else:
        subject = subject_for(tenant_id=tenant_id, email=email)
    return seal(subject, value, field=field), subject


def open_note(stored: Any, *, field: str, subjects: Subjects | None = None) -> str | None:
    """The text sealed by seal_note (None when it cannot be read: erased, key missing, altered)."""
    if not is_sealed(stored):
        return str(stored) if isinstance(stored, str) else None
    try:
        return str(unseal(stored, field=field, subjects=subjects))
    except FieldUnreadable:
        return None


def open_contact(stored: Any, *, subjects: Subjects | None = None) -> dict[str, str]:
    """The plaintext contact (a legacy plaintext dict passes through); FieldUnreadable("contact", ...)."""
    if not stored:
        return {}
    if is_sealed(stored):
        value = unseal(stored, field="contact", subjects=subjects)
        return value if isinstance(value, dict) else {}
    return dict(stored) if isinstance(stored, dict) else {}


# --- masking ----------------------------------------------------------------------------------------

def mask(value: Any, *, kind: str = "") -> str:
    """Enough to recognise, not to use: a***@example.com, ***4567, J*** D***."""
    text = str(value if value is not None else "")
    if not text:
        return ""
    if kind == "email" or ("@" in text and kind != "phone"):
        return mask_email(text) if re.search(r"@", text) else "***"
    # A phone number starts with + or 0 (E.164, or a national number); a date or an id number is masked as a word.
    if kind == "phone" or re.fullmatch(r"[+0][\d\s().-]{6,}", text):
        digits = re.sub(r"\D", "", text)
        return "***" + digits[-4:]
    return " ".join(word[:1] + "***" for word in text.split()) or "***"


@dataclass(frozen=True)
class FieldView:
    """One personal field as a page shows it: masked, or the reason it cannot be read."""

    field: str
    label: str
    masked: str
    value: str = ""
    error: str = ""


def contact_views(stored: Any, *, reveal: bool = False, subjects: Subjects | None = None) -> list[FieldView]:
    if not stored:
        return []
    try:
        contact = open_contact(stored, subjects=subjects)
    except FieldUnreadable as exc:
        return [FieldView(field="contact", label="Contact", masked="", error=str(exc))]
    return [FieldView(field=f"contact.{k}", label=k.capitalize(), masked=mask(contact[k], kind=k),
                      value=str(contact[k]) if reveal else "")
            for k in CONTACT_FIELDS if contact.get(k)]


def payload_for_display(payload: Any, *, reveal: bool = False, subjects: Subjects | None = None) -> dict[str, Any]:
    """The payload with each sealed field masked (or revealed), or a note naming why it cannot be read."""
    if not isinstance(payload, dict):
        return {}
    subjects = subjects or Subjects()
    subjects.prefetch(payload.values())
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if not is_sealed(value):
            out[key] = value
            continue
        try:
            plain = unseal(value, field=f"payload.{key}", subjects=subjects)
        except FieldUnreadable as exc:
            out[key] = f"[unreadable: {exc}]"
            continue
        out[key] = plain if reveal else (mask(plain) if not isinstance(plain, dict | list) else "***")
    return out


def sealed_payload_fields(payload: Any) -> list[str]:
    return [k for k, v in payload.items() if is_sealed(v)] if isinstance(payload, dict) else []


# --- the requester, when a source system names someone outside the tenant ----------------------------

SEALED_REQUESTER = "[sealed]"  # what Escalation.requested_by_email holds then (exports show it as it is)
BLIND_MARK = "bidx:"  # what ApprovalRequest.requester_email holds then: the four-eyes rule compares blind indexes


def requester_seal(*, tenant_id: int, record_type: str, record_id: object, email: str) -> str:
    """Seal an outsider's email under their own subject's key, linked to the record; the blind mark to keep."""
    subject = subject_for(tenant_id=tenant_id, email=email)
    record, _ = SubjectRecord.objects.get_or_create(subject=subject, tenant_id=tenant_id, record_type=record_type,
                                                    record_id=str(record_id))
    record.sealed = {**record.sealed, "requested_by": seal(subject, email, field="requested_by")}
    record.save(update_fields=["sealed"])
    return blind_mark(email)


_NOT_PRIMED = object()


def prime(escalations: Iterable[Any]) -> None:
    """Load in two queries what showing a page of cases needs (sealed requesters, the subjects of sealed values),
    so that a list costs the same number of queries whatever it holds."""
    items = list(escalations)
    sealed_ids = {str(e.pk) for e in items if getattr(e, "requested_by_email", "") == SEALED_REQUESTER}
    requesters: dict[str, Any] = {}
    if sealed_ids:
        for record_id, values in SubjectRecord.objects.filter(record_type="escalation", record_id__in=sealed_ids) \
                .values_list("record_id", "sealed"):
            value = (values or {}).get("requested_by")
            if value is not None and is_sealed(value):
                requesters[record_id] = value
    subjects = Subjects()
    subjects.prefetch([*requesters.values(), *(v for e in items if isinstance(getattr(e, "payload", None), dict)
                                                for v in e.payload.values())])
    for e in items:
        e._privacy_subjects = subjects
        e._privacy_requester = requesters.get(str(e.pk))


def requested_by_of(escalation: Any) -> str:
    """The requester's email of an escalation, opened when sealed; "" when there is none or it cannot be read."""
    stored = getattr(escalation, "requested_by_email", "") or ""
    if stored != SEALED_REQUESTER:
        return stored
    in_hand = getattr(escalation, "_privacy_requester_sealed_now", None)
    if in_hand is not None:
        return str(in_hand)  # sealed by this very request (a create's 201 body): nothing to read back
    primed = getattr(escalation, "_privacy_requester", _NOT_PRIMED)
    try:
        if primed is _NOT_PRIMED:
            return requester_open(record_type="escalation", record_id=escalation.pk)
        if primed is None:
            return ""
        return str(unseal(primed, field="requested_by", subjects=getattr(escalation, "_privacy_subjects", None)))  # type: ignore[arg-type]
    except FieldUnreadable:
        return ""


def subjects_of(escalation: Any) -> Subjects | None:
    """The subjects prime() loaded for this case's page, if any."""
    return getattr(escalation, "_privacy_subjects", None)


def blind_mark(email: str) -> str:
    return BLIND_MARK + (blind_index(SubjectIdentifier.Kind.EMAIL, email) or "")


def same_person_email(stored: str, email: str) -> bool:
    """The four-eyes email comparison, whether `stored` is a plain email or a blind mark."""
    if not stored or not email:
        return False
    if stored.startswith(BLIND_MARK):
        return stored == blind_mark(email)
    return stored.lower() == email.lower()


def requester_open(*, record_type: str, record_id: object) -> str:
    """The sealed requester's email of a record; FieldUnreadable("requested_by", ...) when it cannot be read."""
    for record in SubjectRecord.objects.filter(record_type=record_type, record_id=str(record_id)).select_related("subject"):
        sealed = (record.sealed or {}).get("requested_by")
        if sealed is not None and is_sealed(sealed):
            return str(unseal(sealed, field="requested_by", subjects=Subjects([record.subject])))
    raise FieldUnreadable("requested_by", UNKNOWN_SUBJECT)


def subject_erase_key(subject: Subject) -> None:
    """Crypto-shred: destroy the wrapped data key and the identifiers (the caller holds the transaction)."""
    Subject.objects.filter(pk=subject.pk).update(wrapped_key="", erased_at=timezone.now(), held_until=None)
    SubjectIdentifier.objects.filter(subject=subject).delete()
    _UNWRAPPED.clear()
    subject.wrapped_key, subject.erased_at, subject.held_until = "", timezone.now(), None
