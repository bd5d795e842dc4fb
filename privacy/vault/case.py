"""What a case holds sealed: its customer contact, personal payload fields and notes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..models import PrivacySettings, Subject
from .keys import (
    FieldUnreadable,
    Subjects,
    is_sealed,
    seal,
    subject_for,
    subject_id_of,
    unseal,
)

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
