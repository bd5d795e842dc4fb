"""The queue page's cards, formatted in Python once per page rather than tag by tag in the template.

The queue is the most visited page and every open dashboard re-renders it every 15 s. Rendered
with an `{% include %}`, template tags and filters per card, 25 cards cost most of the page's CPU
(each card resolved ~30 template variables and tags, called reverse(), and formatted four datetimes
through the template engine). Here each card is a dict of ready strings, built with the same
helpers the template tags use, so the page prints exactly what it printed before; the template
only places them. Nothing here is marked safe except the badges, which format_html escapes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.formats import get_format
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import get_language

from trustguard.money import format_money

from .templatetags.dashboard import (
    age,
    deadline_of,
    reason_label,
    risk_badge,
    role_label,
    status_badge,
    type_label,
    urgency_badge,
)

# Any valid pk: the detail URL is reversed once per page and the real pk put in its place (a
# UUID's text needs no quoting in a path, so this gives what reverse() would for each card).
_PK_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
_DEADLINE_ICONS = {"overdue": "⚠", "soon": "◔"}
_OTHER_DEADLINE_ICON = "◷"
REASON_CHARS = 140


# Format characters that print something finer than the minute (seconds, microseconds, the epoch,
# ISO 8601 and RFC 5322 dates): a format without them prints the same for every second of a minute.
_FINER_THAN_MINUTE = frozenset("suUcr")


def _minute_is_enough(datetime_format: str) -> bool:
    return not _FINER_THAN_MINUTE.intersection(dateformat.re_formatchars.split(datetime_format)[1::2])


@lru_cache(maxsize=4096)
def _format_minute(naive: datetime, offset: timedelta | None, tzname: str | None, zone: tzinfo | None,
                   datetime_format: str, language: str | None) -> str:
    """DATETIME_FORMAT of a local time, memoised (formatting is ~20 us; a card has two, and every open
    dashboard re-renders the same cards every 15 s). Keyed on the local wall-clock minute, its offset
    and zone name and the language, which is everything such a format can print."""
    return dateformat.format(naive.replace(tzinfo=zone), datetime_format)


def _title(row: dict[str, Any], tenant: Any) -> str:
    """The tenant's word for the type when it set one, else the policy's name."""
    word = type_label(row["type"], tenant)
    return word if word != row["type"] else (row["policy__name"] or row["type"])


def queue_cards(items: list[dict[str, Any]], *, locale: str | None = None, tenant: Any = None) -> list[dict[str, Any]]:
    """One dict per queue row (selectors.QUEUE_CARD_FIELDS) with everything its card prints, in order;
    money in `locale` (the tenant's); roles, statuses, types and reasons in `tenant`'s words (terminology)."""
    detail_url = reverse("dashboard:detail", args=[_PK_PLACEHOLDER])
    datetime_format = get_format("DATETIME_FORMAT")
    tz = timezone.get_current_timezone()
    # Badges and role labels take their few values again and again on a page: make each once.
    badges: dict[tuple[Callable[[str], SafeString], str], SafeString] = {}
    roles: dict[str, str] = {}

    def badge(make: Callable[..., SafeString], value: str) -> SafeString:
        if (make, value) not in badges:
            badges[make, value] = make(value, tenant) if make is status_badge else make(value)
        return badges[make, value]

    by_minute = _minute_is_enough(datetime_format)
    language = get_language()

    def local(value: datetime) -> tuple[str, str]:
        """`{{ value|date:'c' }}` and `{{ value }}` of a template, for an aware datetime."""
        value = timezone.localtime(value, tz)
        if not by_minute:
            return value.isoformat(), dateformat.format(value, datetime_format)
        naive = value.replace(second=0, microsecond=0, tzinfo=None)
        return value.isoformat(), _format_minute(naive, value.utcoffset(), value.tzname(), value.tzinfo,
                                                 datetime_format, language)

    cards = []
    for e in items:
        pk = str(e["id"])
        deadline = deadline_of(status=e["status"], ack_due_at=e["ack_due_at"], expires_at=e["expires_at"],
                               defer_until=e["defer_until"])
        when = deadline["when"]
        when_iso, when_title = local(when) if when is not None else ("", "")
        created_iso, created_title = local(e["created_at"])
        role = e["assigned_role"]
        if role not in roles:
            roles[role] = role_label(role, tenant)
        cards.append({
            "pk": pk,
            "url": detail_url.replace(_PK_PLACEHOLDER, pk),
            "money": format_money(e["amount_minor"], e["currency"], locale),
            "title": _title(e, tenant),
            "source_entity_id": e["source_entity_id"],
            "source_system": e["source_system"],
            "source_entity_type": e["source_entity_type"],
            "type": e["type"],
            "reason": Truncator(reason_label(e["reason"], tenant)).chars(REASON_CHARS),
            "sla_state": deadline["state"],
            "deadline_icon": _DEADLINE_ICONS.get(deadline["state"], _OTHER_DEADLINE_ICON),
            "deadline_label": deadline["label"],
            "deadline_iso": when_iso,
            "deadline_title": when_title,
            "status_badge": badge(status_badge, e["status"]),
            "risk_badge": badge(risk_badge, e["risk_level"]),
            "urgency_badge": badge(urgency_badge, e["urgency"]) if e["urgency"] != "normal" else "",
            "escalation_level": e["escalation_level"],
            "created_iso": created_iso,
            "created_title": created_title,
            "age": age(e["created_at"]),
            "role": roles[role],
            "approvals": (f"{e['approvals_received']}/{e['approvals_required']}" if e["approvals_required"] > 1 else ""),
            "estimated_cost": (format_money(e["estimated_cost_minor"], e["estimated_cost_currency"], locale)
                               if e.get("estimated_cost_minor") is not None else ""),
            "window": (f"{local(e['window_starts_at'])[1]} and {local(e['window_ends_at'])[1]}"
                       if e.get("window_starts_at") and e.get("window_ends_at") else ""),
        })
    return cards
