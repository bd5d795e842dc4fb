"""Logging filters: correlation id on every record, and PII masked in every line."""

from __future__ import annotations

import logging
import re

from . import context

# An email address, also URL-encoded (bob%40example.com in a logged query string).
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*?(?:@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# A phone number: international (+ or URL-encoded %2B, then 7-15 digits, optionally separated by
# spaces, dots or dashes), national (0 then 9-11 digits: 0803 123 4567), or bare Nigerian E.164
# without the + (2348031234567). Dates, IP addresses, UUID parts, ids and amounts are not phones,
# so a match may not touch a word character, "/", ":", "-", or a "." followed by a digit.
_PHONE = re.compile(
    r"(?<![\w/.:%-])"
    r"(?:(?:\+|%2[Bb])\d(?:[\s.-]?\d){6,14}|0\d(?:[\s.-]?\d){8,10}|234\d{10})"
    r"(?![\w/:-]|\.\d)"
)


def mask_email(value: str) -> str:
    """a***@example.com: enough to recognise, not enough to harvest."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", value)


def mask_phone(value: str) -> str:
    """Keep only the last four digits of a phone number."""

    def _mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return "***" + digits[-4:]

    return _PHONE.sub(_mask, value)


def mask_pii(value: str) -> str:
    return mask_phone(mask_email(value))


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = context.current_request_id()
        return True


class MaskPiiFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line
            message = str(record.msg)
        masked = mask_pii(message)
        if masked != message or record.args:
            record.msg, record.args = masked, ()
        if record.exc_text:
            record.exc_text = mask_pii(record.exc_text)
        return True
