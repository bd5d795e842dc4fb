"""The subject export as a PDF a person can read (the same rendering as the regulator's report, reports.pdf)."""

from __future__ import annotations

import io
import json
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import SimpleDocTemplate, Spacer

from reports.pdf import FONT, _p, _small, _table


def _value(value: Any) -> str:
    if value in (None, "", {}, []):
        return "-"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def subject_export_pdf(document: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=15 * mm, title="Subject access export", author="TrustGuard",
                            initialFontName=FONT)
    query = document["query"]
    story: list[Any] = [
        _p("Subject access export", "Title"),
        _p(f"Tenant {document['tenant']}. Generated {document['generated_at']} by {document['generated_by']}, "
           f"for the subject found by {query['by']} {query['value']}. This is everything TrustGuard holds about "
           "this person in this tenant; the same content is available as JSON.", "Italic"),
        Spacer(1, 4 * mm), _p("Data subject records", "Heading2"),
    ]
    if document["subjects"]:
        story.append(_table([["Subject id", "Created", "Identified by"]] + [
            [_small(s["id"]), _small(s["created_at"]), _small(", ".join(s["identifiers"]) or "source entity")]
            for s in document["subjects"]], [70 * mm, 55 * mm, 55 * mm]))
    else:
        story.append(_p("No personal data is held about this subject."))
    for case in document["escalations"]:
        story += [Spacer(1, 4 * mm), _p(f"Case {case['type']} {case['source']['entity_id']}", "Heading3")]
        rows = [["Field", "Value"], ["Case id", _small(case["id"])], ["Status", case["status"]],
                ["Reason", _small(case["reason"])],
                ["Source", _small(f"{case['source']['system']} / {case['source']['entity_type']} / "
                                  f"{case['source']['entity_id']}")],
                ["Created / closed", _small(f"{case['created_at']} / {case['closed_at'] or '-'}")]]
        rows += [[f"Contact: {k}", _small(_value(v))] for k, v in (case["contact"] or {}).items()]
        rows += [[_small(f"Details: {k}"), _small(_value(v))] for k, v in (case["payload"] or {}).items()]
        rows += [[f"Decision {i + 1}", _small(f"{d['decision']} by {d['role']} at {d['decided_at']}: "
                                             f"{d['justification']}")] for i, d in enumerate(case["decisions"])]
        story.append(_table(rows, [45 * mm, 135 * mm]))
    if document["messages"]:
        story += [Spacer(1, 4 * mm), _p("Messages sent to the subject", "Heading2"),
                  _table([["When", "Channel", "To", "Subject"]] + [
                      [_small(m["created_at"]), m["channel"], _small(m["to"]), _small(m["subject"])]
                      for m in document["messages"]], [45 * mm, 20 * mm, 55 * mm, 60 * mm])]
    if document["legal_holds"]:
        story += [Spacer(1, 4 * mm), _p("Records kept under a legal obligation", "Heading2"),
                  _table([["Case", "Kept until", "Why"]] + [
                      [_small(h["escalation"]), _small(h["until"] or "case still open"), _small(h["reason"])]
                      for h in document["legal_holds"]], [60 * mm, 40 * mm, 80 * mm])]
    doc.build(story)
    return buffer.getvalue()
