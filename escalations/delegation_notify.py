"""Who hears about an out-of-office period (delegation.* events), registered with notifications in
EscalationsConfig.ready() (notifications imports no app; accounts only writes the events).

- delegation.started: the delegate is told whose place they take, until when, and for which types.
- delegation.ended / delegation.revoked: the delegate is told it is over; the delegator, back, gets a summary
  of what was decided on their behalf meanwhile (read from the decisions: on_behalf_of is on each).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Delegation
from accounts.selectors import language_and_zone, zone_of
from approvals.models import Decision
from notifications.models import OutboxEvent
from notifications.outbox import catalogue
from notifications.registry import Recipient
from trustguard.links import absolute_url
from trustguard.money import format_money

from .notify import person_name

CHANNELS = ("in_app", "email")
SUMMARY_LINES = 50


def _when(value: datetime | str | None, zone: tzinfo) -> str:
    if isinstance(value, str):
        value = parse_datetime(value)
    return timezone.localtime(value, zone).strftime("%a %d %b %Y, %H:%M %Z") if value else ""


def decided_on_behalf(delegation: Delegation, until: datetime) -> list[Decision]:
    """The decisions the delegation's delegate took for the delegator during it (oldest first)."""
    return list(Decision.objects.filter(on_behalf_of=delegation.delegator, decided_at__gte=delegation.starts_at,
                                        decided_at__lte=until, request__tenant_id=delegation.tenant_id)
                .select_related("decided_by", "request__escalation").order_by("decided_at", "id"))


def _summary_line(decision: Decision, locale: str, zone: tzinfo) -> str:
    escalation = decision.request.escalation
    money = format_money(escalation.amount_minor, escalation.currency, locale) if escalation.currency else ""
    what = " ".join(x for x in (money, escalation.source_entity_type, escalation.source_entity_id) if x)
    return (f"- {decision.get_decision_display()}d {escalation.type} {what} ({_when(decision.decided_at, zone)}) by "
            f"{person_name(decision.decided_by)}: {absolute_url(reverse('dashboard:detail', args=[escalation.pk]))}")


def delegation_recipients(event: OutboxEvent) -> Iterable[Recipient]:
    try:
        pk = uuid.UUID(event.aggregate_id)
    except ValueError:
        return []
    delegation = (Delegation.objects.select_related("tenant", "delegator", "delegate")
                  .filter(pk=pk, tenant_id=event.tenant_id).first())
    if delegation is None:
        return []
    data: dict[str, Any] = event.data or {}
    away_name, tenant = person_name(delegation.delegator), delegation.tenant
    types = ", ".join(delegation.escalation_types) or "every type"

    def period(user: Any) -> str:  # in the zone of whoever reads it
        zone = zone_of(tenant=tenant, user=user)
        return f"from {_when(data.get('starts_at'), zone)} to {_when(data.get('ends_at'), zone)}"

    links = {"event": event.type, "url": absolute_url(reverse("dashboard:away"))}
    base = {"tenant_name": tenant.name, "url": links["url"]}
    out: list[Recipient] = []

    def tell(user: Any, headline: str, text: str) -> None:
        out.append(Recipient(audience="delegation", channels=CHANNELS, user_id=user.pk, email=user.email,
                             phone=user.phone_number, context={**base, "headline": headline, "text": text},
                             data=links, **language_and_zone(tenant=tenant, user=user)))

    if event.type == catalogue.DELEGATION_STARTED.type and delegation.delegate is not None:
        tell(delegation.delegate, f"You are standing in for {away_name}",
             f"{away_name} is away {period(delegation.delegate)}. Their cases ({types}) come to your queue and you "
             "decide them on their behalf, with your own one-time code; each decision records you both.")
    elif event.type in (catalogue.DELEGATION_ENDED.type, catalogue.DELEGATION_REVOKED.type):
        ended = "ended early" if event.type == catalogue.DELEGATION_REVOKED.type else "ended"
        if delegation.delegate is not None:
            tell(delegation.delegate, f"You no longer stand in for {away_name}",
                 f"{away_name}'s out-of-office has {ended}; their cases go back to them.")
        decided = decided_on_behalf(delegation, delegation.ended_at or timezone.now())
        zone = zone_of(tenant=tenant, user=delegation.delegator)
        lines = [_summary_line(d, tenant.locale, zone) for d in decided[:SUMMARY_LINES]]
        if not decided:
            text = "Nothing was decided on your behalf while you were away."
        else:
            text = (f"{len(decided)} decision{'s' if len(decided) != 1 else ''} were taken on your behalf while you "
                    "were away:\n" + "\n".join(lines))
        tell(delegation.delegator, "Welcome back: what was decided on your behalf", text)
    return out
