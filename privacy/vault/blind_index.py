"""Blind indexes: finding a subject's records by email or phone without decrypting anything."""

from __future__ import annotations

import hashlib
import hmac
import re

import phonenumbers
from django.conf import settings

from ..models import SubjectIdentifier

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
