"""Phone numbers in E.164, parsed with libphonenumber (Nigerian numbers default to +234)."""

from __future__ import annotations

import phonenumbers
from django.conf import settings

from .errors import ValidationFailed


def normalize_phone(raw: str, *, field: str = "phone") -> str:
    """'0803 123 4567' -> '+2348031234567'. Raises ValidationFailed naming the field."""
    try:
        number = phonenumbers.parse(raw, settings.DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(f"{field} is not a phone number", errors={field: [str(exc)]}) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed(f"{field} is not a valid phone number", errors={field: ["Not a valid phone number."]})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
