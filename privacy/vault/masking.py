"""Showing sealed and personal values masked (and revealed, for a subject export)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from trustguard.logging import mask_email

from .case import open_contact
from .keys import (
    CONTACT_FIELDS,
    FieldUnreadable,
    Subjects,
    is_sealed,
    unseal,
)

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
