"""Presentation of change management on the case page and the queue: cost, execution window, obligations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from escalations.costs import actual, estimated, variance
from escalations.obligation_actions import is_approver
from escalations.obligations import normalized
from escalations.schedule import window_of
from escalations.services import is_requester
from trustguard.money import format_money

from .dashboard import compact_duration, tenant_locale

register = template.Library()


def _shown(escalation: Any, money: Any) -> str:
    return format_money(money.value_minor, money.currency, tenant_locale(escalation)) if money is not None else ""


@register.filter
def estimated_cost(escalation: Any) -> str:
    return _shown(escalation, estimated(escalation))


@register.filter
def actual_cost(escalation: Any) -> str:
    return _shown(escalation, actual(escalation))


@register.filter
def cost_variance(escalation: Any) -> str:
    """"+₦50,000.00 over" / "₦20,000.00 under" / "on estimate" (same currency only)."""
    delta = variance(escalation)
    if delta is None:
        return ""
    if delta.value_minor == 0:
        return gettext("on estimate")
    shown = format_money(abs(delta.value_minor), delta.currency, tenant_locale(escalation))
    return (gettext("+%(amount)s over estimate") if delta.value_minor > 0 else gettext("%(amount)s under estimate")) % {
        "amount": shown}


@register.simple_tag
def execution_schedule(escalation: Any) -> dict[str, Any] | None:
    """The window ("execute between … and …") and its countdown: opens in / closes in / closed."""
    window = window_of(escalation)
    lapse = escalation.approval_expires_at
    if window is None and lapse is None:
        return None
    now = timezone.now()
    out: dict[str, Any] = {"starts_at": window.starts_at if window else None,
                           "ends_at": window.ends_at if window else None, "approval_expires_at": lapse}
    if window is not None and now < window.starts_at:
        out.update(state="upcoming", target=window.starts_at,
                   label=gettext("opens in %(left)s") % {"left": compact_duration(window.starts_at - now)})
    else:
        end = min(d for d in (window.ends_at if window else None, lapse) if d is not None)
        if now < end:
            out.update(state="open", target=end, label=gettext("closes in %(left)s") % {"left": compact_duration(end - now)})
        else:
            out.update(state="closed", target=end, label=gettext("closed"))
    return out


@register.simple_tag
def obligations_of(escalation: Any) -> list[dict[str, Any]]:
    """The conditions as obligations, with due dates parsed for the template."""
    out = []
    for c in normalized(escalation):
        due = parse_datetime(c["due_at"]) if c.get("due_at") else None
        out.append({**c, "due": due, "evidence": [
            {**ev, "at": parse_datetime(ev["added_at"]) if ev.get("added_at") else None} for ev in c["evidence"]]})
    return out


@register.simple_tag(takes_context=True)
def may_resolve_conditions(context: template.Context, escalation: Any) -> bool:
    """The viewer is an approver of this case (may mark its conditions met or waive them)."""
    request = context.get("request")
    actor = getattr(request, "actor", None)
    return actor is not None and is_approver(actor, escalation) and not is_requester(actor, escalation)


@register.filter
def until(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return compact_duration(moment - timezone.now())
