"""Presentation helpers for the dashboard: money, deadlines, ages, badges, masked contact data, charts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, gettext_lazy

from audit.actions import action_label as audit_action_label
from escalations.terminology import STATUS_LABELS
from escalations.terminology import label as term_label
from trustguard.logging import mask_email, mask_phone
from trustguard.money import format_money

register = template.Library()


@register.filter
def money(escalation: Any) -> str:
    """₦2,500,000.00 from amount_minor + currency, in the escalation's tenant's locale; an em dash when none."""
    minor, currency = getattr(escalation, "amount_minor", None), getattr(escalation, "currency", "")
    return format_money(minor, currency, tenant_locale(escalation))


def tenant_locale(obj: Any) -> str | None:
    """The locale of the tenant `obj` belongs to, when that tenant is already loaded (no query for it)."""
    state = getattr(obj, "_state", None)
    tenant = state.fields_cache.get("tenant") if state is not None else None
    return getattr(tenant, "locale", None)


def compact_duration(delta: timedelta) -> str:
    """3d 4h, 2h 5m, 12m, <1m: short enough for a phone."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else "<1m"


@register.filter
def age(created_at: datetime | None) -> str:
    if created_at is None:
        return ""
    return compact_duration(timezone.now() - created_at)


SOON = timedelta(hours=1)
_DEADLINE_WORDS = {"Acknowledge": gettext_lazy("Acknowledge"), "Decide": gettext_lazy("Decide"),
                   "Back": gettext_lazy("Back")}


@register.simple_tag
def sla(escalation: Any) -> dict[str, Any]:
    """The deadline that matters now, what it is for, and how close it is (ok | soon | overdue | none)."""
    return deadline_of(status=escalation.status, ack_due_at=escalation.ack_due_at,
                       expires_at=escalation.expires_at, defer_until=escalation.defer_until)


def deadline_of(*, status: str, ack_due_at: datetime | None, expires_at: datetime,
                defer_until: datetime | None) -> dict[str, Any]:
    """sla() from the four fields it reads (the queue has them as a row, not a model)."""
    now = timezone.now()
    when: datetime | None
    if status == "pending" and ack_due_at and ack_due_at <= expires_at:
        what, when = "Acknowledge", ack_due_at
    elif status in ("pending", "acknowledged"):
        what, when = "Decide", expires_at
    elif status == "deferred":
        what, when = "Back", defer_until
    else:
        return {"state": "none", "label": str(STATUS_LABELS.get(status, status.capitalize())), "when": None, "what": ""}
    if when is None:
        return {"state": "none", "label": gettext("No deadline"), "when": None, "what": what}
    left = when - now
    doing = str(_DEADLINE_WORDS[what])
    if left.total_seconds() < 0:
        state, label = "overdue", gettext("%(what)s: overdue %(left)s") % {"what": doing, "left": compact_duration(left)}
    else:
        state = "soon" if left <= SOON and status != "deferred" else "ok"
        label = gettext("%(what)s in %(left)s") % {"what": doing, "left": compact_duration(left)}
    return {"state": state, "label": label, "when": when, "what": what}


_RISK_ICON = {"low": "▽", "medium": "◇", "high": "▲"}
_URGENCY_ICON = {"low": "·", "normal": "•", "high": "!", "critical": "‼"}
_RISK_WORDS = {"low": gettext_lazy("Low risk"), "medium": gettext_lazy("Medium risk"), "high": gettext_lazy("High risk")}
_URGENCY_WORDS = {"low": gettext_lazy("Low urgency"), "normal": gettext_lazy("Normal urgency"),
                  "high": gettext_lazy("High urgency"), "critical": gettext_lazy("Critical urgency")}


# In a sentence: "(payment, low risk)".
_RISK_IN_TEXT = {"low": gettext_lazy("low risk"), "medium": gettext_lazy("medium risk"), "high": gettext_lazy("high risk")}


@register.filter
def risk_words(level: str) -> str:
    return str(_RISK_IN_TEXT.get(level, level))


@register.simple_tag
def risk_badge(level: str) -> SafeString:
    """Colour plus a shape plus words: colour is never the only signal."""
    return format_html('<span class="badge risk-{}"><span aria-hidden="true">{}</span> {}</span>',
                       level, _RISK_ICON.get(level, ""), str(_RISK_WORDS.get(level, level.capitalize())))


@register.simple_tag
def urgency_badge(level: str) -> SafeString:
    return format_html('<span class="badge urgency-{}"><span aria-hidden="true">{}</span> {}</span>',
                       level, _URGENCY_ICON.get(level, ""), str(_URGENCY_WORDS.get(level, level.capitalize())))


@register.simple_tag
def status_badge(status: str, tenant: Any = None) -> SafeString:
    """The status in the tenant's words (escalations.terminology), in the active language."""
    return format_html('<span class="badge status status-{}">{}</span>', status,
                       term_label("status", status, tenant=tenant))


# The tenant's words for a role, a status, an escalation type or a reason (its terminology), in the active
# language: {{ e.assigned_role|role_label:current_tenant }}. Without a tenant: the standard wording.
@register.filter
def role_label(role: str, tenant: Any = None) -> str:
    return term_label("role", role, tenant=tenant)


@register.filter
def status_label(status: str, tenant: Any = None) -> str:
    return term_label("status", status, tenant=tenant)


@register.filter
def type_label(type_: str, tenant: Any = None) -> str:
    return term_label("escalation_type", type_, tenant=tenant)


@register.filter
def reason_label(reason: str, tenant: Any = None) -> str:
    return term_label("reason", reason, tenant=tenant)


@register.filter
def masked(value: Any) -> str:
    """Mask emails and phone numbers in contact data (last four digits of a phone stay)."""
    return mask_phone(mask_email(str(value)))


@register.filter
def humanize_key(key: str) -> str:
    return str(key).replace("_", " ").strip().capitalize()


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@register.filter
def is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


@register.filter
def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return compact_duration(timedelta(seconds=seconds))


@register.inclusion_tag("dashboard/partials/bar_chart.html")
def bar_chart(rows: list[tuple[str, int]], title: str, label_every: int = 1) -> dict[str, Any]:
    """A small server-side SVG bar chart (no script, no CDN), with a table fallback for screen readers."""
    width, height, pad_bottom, pad_top = 560, 200, 24, 16
    peak = max((n for _, n in rows), default=0) or 1
    slot = width / max(len(rows), 1)
    bars = []
    for i, (label, n) in enumerate(rows):
        h = (height - pad_bottom - pad_top) * n / peak
        bars.append({
            "x": round(i * slot + slot * 0.15, 1), "w": round(slot * 0.7, 1), "y": round(height - pad_bottom - h, 1),
            "h": round(h, 1), "vy": round(height - pad_bottom - h - 4, 1), "label": label, "n": n,
            "tx": round(i * slot + slot / 2, 1),
            "show_label": i % label_every == 0,
        })
    return {"bars": bars, "title": title, "width": width, "height": height, "base": height - pad_bottom,
            "label_y": height - 6,
            "rows": rows}


@register.filter
def http_url(value: str) -> str:
    """The URL if it is http(s), else empty: a source's link must never be javascript: or data:."""
    from urllib.parse import urlsplit

    return value if isinstance(value, str) and urlsplit(value).scheme in ("http", "https") else ""


MAX_RENDER_DEPTH = 4


@register.filter
def render_value(value: Any, depth: int = 0) -> SafeString:
    """A payload value as readable HTML: objects as nested lists of facts, lists of objects as tables.

    Everything goes through format_html / escaping; deeper structures fall back to indented JSON.
    """
    from django.utils.html import escape, format_html_join
    from django.utils.safestring import mark_safe

    if depth >= MAX_RENDER_DEPTH:
        return format_html('<pre class="json">{}</pre>', pretty_json(value))
    if isinstance(value, dict):
        if not value:
            return mark_safe('<span class="muted">—</span>')
        rows = format_html_join("", "<div><dt>{}</dt><dd>{}</dd></div>",
                                ((humanize_key(k), render_value(v, depth + 1)) for k, v in value.items()))
        return format_html('<dl class="facts nested">{}</dl>', rows)
    if isinstance(value, list):
        if not value:
            return format_html('<span class="muted">{}</span>', gettext("none"))
        if all(isinstance(v, dict) for v in value):
            keys = list(dict.fromkeys(k for v in value for k in v))
            head = format_html_join("", '<th scope="col">{}</th>', ((humanize_key(k),) for k in keys))
            body = format_html_join("", "<tr>{}</tr>", (
                (format_html_join("", "<td>{}</td>", ((render_value(v.get(k, ""), depth + 1),) for k in keys)),)
                for v in value))
            return format_html('<div class="table-wrap"><table class="table small"><thead><tr>{}</tr></thead>'
                               "<tbody>{}</tbody></table></div>", head, body)
        if all(is_scalar(v) for v in value):
            return format_html_join(", ", "{}", ((v,) for v in value))
        return format_html('<ul class="plain">{}</ul>',
                           format_html_join("", "<li>{}</li>", ((render_value(v, depth + 1),) for v in value)))
    if isinstance(value, bool):
        return escape(gettext("Yes") if value else gettext("No"))
    if value is None:
        return mark_safe('<span class="muted">—</span>')
    return escape(value)


@register.filter
def action_label(action: str) -> str:
    """An audit action in words ("decision.recorded" -> "Decision recorded"): its label in the catalogue."""
    return audit_action_label(action)


_DECIDED = {"approve": gettext_lazy("Approved"), "reject": gettext_lazy("Rejected"), "defer": gettext_lazy("Deferred")}
# A stage of the route and a condition of an approval, by their status (approvals' and obligations' values).
_STAGE_STATUS = {"waiting": gettext_lazy("waiting"), "open": gettext_lazy("open"), "complete": gettext_lazy("complete"),
                 "rejected": gettext_lazy("rejected")}
_CONDITION_STATUS = {"open": gettext_lazy("open"), "overdue": gettext_lazy("overdue"), "met": gettext_lazy("met"),
                     "waived": gettext_lazy("waived")}


@register.filter
def decided(decision: str) -> str:
    return str(_DECIDED.get(decision, decision))


_DELEGATION_STATUS = {"scheduled": gettext_lazy("scheduled"), "active": gettext_lazy("active"),
                      "ended": gettext_lazy("ended"), "revoked": gettext_lazy("revoked")}


@register.filter
def delegation_status(status: str) -> str:
    """An out-of-office period's status (accounts' Delegation.status_at) in words."""
    return str(_DELEGATION_STATUS.get(status, status))


@register.filter
def stage_status(status: str) -> str:
    return str(_STAGE_STATUS.get(status, status))


@register.filter
def condition_status(status: str) -> str:
    return str(_CONDITION_STATUS.get(status, status))


@register.inclusion_tag("dashboard/partials/hbar_chart.html")
def hbar_chart(rows: list[tuple[str, int]], title: str) -> dict[str, Any]:
    """Horizontal bars with their labels and values as text: readable at any width, no script."""
    peak = max((n for _, n in rows), default=0) or 1
    return {"title": title, "rows": [{"label": label, "n": n, "pct": round(100 * n / peak, 1)} for label, n in rows]}
