"""Time zone names: which ones exist and which one a name means. Which zone a person reads times in is one rule
elsewhere (accounts.selectors.zone_of: their own, else their tenant's, else the site's TIME_ZONE)."""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError

from .errors import ValidationFailed


def zone_named(*names: str) -> ZoneInfo:
    """The first of `names` that is a time zone; else the site's (settings.TIME_ZONE); else UTC."""
    for candidate in (*names, str(settings.TIME_ZONE or ""), "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


@cache
def _names() -> frozenset[str]:
    return frozenset(available_timezones())


def time_zone_names() -> list[str]:
    """Every IANA name, sorted: the choices offered to people and operators."""
    return sorted(_names())


def check_time_zone(name: str, field: str = "time_zone") -> str:
    """`name` if it is blank or a time zone; else a 400 naming `field` (services)."""
    if name and name not in _names():
        raise ValidationFailed(f"unknown time zone {name[:64]!r}", errors={field: ["Choose a time zone from the list."]})
    return name


def validate_time_zone(value: str) -> None:
    """The same check as a model field validator (the admin's forms)."""
    if value and value not in _names():
        raise ValidationError("Choose a time zone from the list (e.g. Africa/Lagos).", code="invalid")
