"""A regulator's report of one escalation: the case, its decisions and its audit trail, as a PDF."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import font_roboto
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import StyleSheet1, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from accounts.roles import role_label
from approvals.models import Decision
from approvals.services import is_dismissed
from audit.models import AuditEvent
from audit.selectors import CHAIN_ORDER
from escalations import costs, obligations
from escalations.amendments import amendments_of
from escalations.comments import comments_of
from escalations.models import Escalation
from escalations.notify import requester_name
from escalations.schedule import window_of
from trustguard.jsonutil import canonical_json
from trustguard.money import format_money

# A TrueType font with ₦ and the other currency signs (reportlab's built-in Helvetica has none of them: a
# black box), shipped by the pinned font-roboto package and embedded (subset) in every report.
FONT, FONT_BOLD = "Roboto", "Roboto-Bold"
pdfmetrics.registerFont(TTFont(FONT, font_roboto.Roboto))
pdfmetrics.registerFont(TTFont(FONT_BOLD, font_roboto.RobotoBold))
pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD)


def _styles() -> StyleSheet1:
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        bold = "Bold" in getattr(style, "fontName", "") or style.name.startswith(("Title", "Heading"))
        style.fontName = FONT_BOLD if bold else FONT
    return styles


_STYLES = _styles()
_TABLE_STYLE = TableStyle([
    ("FONTNAME", (0, 0), (-1, -1), FONT),
    ("FONTNAME", (0, 0), (-1, 0), FONT_BOLD),
    ("FONTSIZE", (0, 0), (-1, -1), 7.5),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf1")),
])


def _when(value: datetime | None) -> str:
    return value.astimezone(timezone.get_current_timezone()).strftime("%Y-%m-%d %H:%M:%S %Z") if value else "-"


def _p(text: Any, style: str = "BodyText") -> Paragraph:
    """A paragraph of untrusted text: escaped, because reportlab reads markup."""
    return Paragraph(escape(str(text if text not in (None, "") else "-")), _STYLES[style])


def _small(text: Any) -> Paragraph:
    style = _STYLES["BodyText"].clone("small", fontSize=7, leading=8.5)
    return Paragraph(escape(str(text if text not in (None, "") else "-")), style)


def _table(rows: list[list[Any]], widths: list[float]) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(_TABLE_STYLE)
    return table


def _cost(escalation: Escalation, money: costs.Money | None) -> str:
    return format_money(money.value_minor, money.currency, escalation.tenant.locale) if money is not None else "-"


def _variance(escalation: Escalation) -> str:
    delta = costs.variance(escalation)
    if delta is None:
        return "-"
    shown = format_money(abs(delta.value_minor), delta.currency, escalation.tenant.locale)
    return "on estimate" if delta.value_minor == 0 else (f"+{shown} over" if delta.value_minor > 0 else f"{shown} under")


def _window(escalation: Escalation) -> str:
    window = window_of(escalation)
    return f"{_when(window.starts_at)} to {_when(window.ends_at)}" if window is not None else "-"


def _template(escalation: Escalation) -> str:
    t = escalation.template
    if not t:
        return "-"
    return f"{t['name']} ({t['slug']} v{t['version']})" + (", pre-approved" if t.get("pre_approved") else "")


def escalation_report_pdf(*, escalation: Escalation, generated_by: str) -> bytes:
    """Render the report; the audit trail is read in chain order, with each event's hash."""
    decisions = list(Decision.objects.filter(request_id=escalation.approval_id).select_related("decided_by", "on_behalf_of")
                     .order_by("decided_at", "id"))
    events = (AuditEvent.objects.filter(tenant_id=escalation.tenant_id, target_type="escalation",
                                        target_id=str(escalation.pk)).order_by(*CHAIN_ORDER))
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=15 * mm, title=f"Escalation {escalation.pk}", author="TrustGuard",
                            initialFontName=FONT)
    amount = format_money(escalation.amount_minor, escalation.currency, escalation.tenant.locale)
    facts = [
        ["Escalation", str(escalation.pk)], ["Tenant", escalation.tenant.slug], ["Type", escalation.type],
        ["Status", escalation.status], ["Reason", _small(escalation.reason)],
        ["Source", f"{escalation.source_system} / {escalation.source_entity_type} / {escalation.source_entity_id}"],
        ["Amount", amount], ["Risk / urgency", f"{escalation.risk_level} / {escalation.urgency}"],
        ["Requested by", requester_name(escalation)],
        ["Assigned role / level", f"{role_label(escalation.assigned_role)} / level {escalation.escalation_level}"],
        # Stages are numbered as the case page shows them: from 1.
        ["Approvals", f"{escalation.approvals_received} of {escalation.approvals_required} "
                      f"(stage {escalation.current_stage + 1})"],
        ["Estimated cost", _cost(escalation, costs.estimated(escalation))],
        ["Actual cost", _cost(escalation, costs.actual(escalation))],
        ["Cost variance", _variance(escalation)],
        ["Execution window", _window(escalation)],
        ["Approval valid until", _when(escalation.approval_expires_at)],
        ["Template", _template(escalation)],
        ["Expiry reason", escalation.expiry_reason or "-"],
        ["Conditions", _small("; ".join(
            f"[{c['status']}] {c['text']} (owner {c['owner'] or '-'}, due {c.get('due_at') or '-'}"
            f"{', evidence ' + str(len(c['evidence'])) if c['evidence'] else ''})"
            for c in obligations.normalized(escalation)) or "-")],
        ["Created", _when(escalation.created_at)], ["Acknowledged", _when(escalation.acknowledged_at)],
        ["Decided", _when(escalation.decided_at)], ["Closed", _when(escalation.closed_at)],
        ["Executed", _when(escalation.executed_at)], ["Policy version", str(escalation.policy_version)],
    ]
    story: list[Any] = [
        _p(f"Escalation report: {escalation.type}", "Title"),
        _p(f"Generated {_when(timezone.now())} by {generated_by}. The audit trail below is the tenant's "
           "hash-chained log; `verify_audit` checks it end to end.", "Italic"),
        Spacer(1, 4 * mm), _p("Case", "Heading2"), _table([["Field", "Value"], *facts], [45 * mm, 135 * mm]),
        Spacer(1, 4 * mm), _p("Decisions", "Heading2"),
    ]
    if decisions:
        story.append(_table([["When", "Decision", "By", "Role", "Stage", "Justification", "Conditions"]] + [
            [_small(_when(d.decided_at)), d.decision + (" (self)" if d.self_approved else "")
             + (" (dismissed by amendment)" if is_dismissed(d, escalation.approval) else ""),
             _small((d.decided_by.get_full_name() or d.decided_by.username) + (
                 f" on behalf of {d.on_behalf_of.get_full_name() or d.on_behalf_of.username}"
                 if d.on_behalf_of is not None else "")), _small(role_label(d.role)),
             str(d.stage + 1), _small(d.justification),
             _small("; ".join(d.conditions) or "-")] for d in decisions],
            [26 * mm, 18 * mm, 28 * mm, 26 * mm, 10 * mm, 42 * mm, 30 * mm]))
    else:
        story.append(_p("No decisions recorded."))
    story += _amendments_and_conversation(escalation)
    story += [Spacer(1, 4 * mm), _p("Audit trail", "Heading2")]
    rows: list[list[Any]] = [["#", "When", "Action", "Actor", "Change", "Hash"]]
    for e in events.iterator(chunk_size=500):
        change = {k: v for k, v in (e.after or {}).items() if (e.before or {}).get(k) != v} if e.after else {}
        sealed = e.seq is not None  # an event not sealed onto the chain yet (audit.sealing) has no place nor chain hash
        rows.append([str(e.seq) if sealed else "–", _small(_when(e.created_at)), _small(e.action), _small(e.actor_label),
                     _small(canonical_json(change) if change else "-"),
                     _small(e.hash[:16] + "…" if sealed else "pending sealing")])
    story.append(_table(rows, [10 * mm, 28 * mm, 30 * mm, 28 * mm, 58 * mm, 26 * mm]) if len(rows) > 1
                 else _p("No audit events."))
    doc.build(story)
    return buffer.getvalue()


def _amendments_and_conversation(escalation: Escalation) -> list[Any]:
    """The requester's amendments (what changed, why) and the case's conversation (every version of a comment)."""
    story: list[Any] = []
    amendments = amendments_of(escalation)
    if amendments:
        story += [Spacer(1, 4 * mm), _p("Amendments", "Heading2"), _table(
            [["When", "By", "Changed", "Justification", "Approvals dismissed"]] + [
                [_small(_when(a.created_at)), _small(a.author_user.username if a.author_user else
                                                     (a.author_api_key.name if a.author_api_key else "")),
                 _small(", ".join(sorted(a.changes))), _small(a.justification), str(len(a.dismissed_decisions or []))]
                for a in amendments], [26 * mm, 28 * mm, 36 * mm, 64 * mm, 26 * mm])]
    comments = comments_of(escalation)
    if comments:
        story += [Spacer(1, 4 * mm), _p("Conversation", "Heading2"), _table(
            [["When", "Who", "Kind", "Text"]] + [
                [_small(_when(c.comment.created_at)), _small(c.author_name + (" (requester)" if c.comment.by_requester
                                                                               else "")),
                 _small(c.comment.kind + (" (edited)" if c.edited else "") + (" (replaced)" if c.replaced_by else "")),
                 _small(c.body if c.body is not None else "[removed: personal data erased]")]
                for c in comments], [26 * mm, 34 * mm, 28 * mm, 92 * mm])]
    return story
