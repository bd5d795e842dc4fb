"""What the case page shows beyond the decision: the requester's side (four eyes up front, cancel, report
execution, amend), the conversation and the amendments with their diffs. Reads only; no rule of its own."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest

from accounts.roles import Capability
from approvals.services import is_dismissed
from escalations.amendments import amendable_values, amendments_of
from escalations.comments import awaiting_requester, comments_of, is_case_requester
from escalations.models import OPEN_STATUSES, Escalation, EscalationStatus
from privacy.vault import payload_for_display
from trustguard.money import format_money

from .forms import AmendForm, CancelForm, CommentForm, ExecutionForm, from_minor


def _shown(field: str, value: Any, locale: str | None) -> str:
    if field == "amount":
        return format_money(value["value_minor"], value["currency"], locale) if value else "—"
    if field == "payload":
        return json.dumps(payload_for_display(value or {}), ensure_ascii=False, sort_keys=True)
    return str(value) if value not in (None, "") else "—"


def _payload_diff(before: Any, after: Any) -> list[tuple[str, str, str]]:
    """Key by key, masked as the case page shows payloads (privacy.vault)."""
    old, new = payload_for_display(before or {}), payload_for_display(after or {})
    return [(k, json.dumps(old.get(k), ensure_ascii=False) if k in old else "—",
             json.dumps(new.get(k), ensure_ascii=False) if k in new else "—")
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def amendment_views(escalation: Escalation, locale: str | None) -> list[dict[str, Any]]:
    out = []
    for a in amendments_of(escalation):
        rows = []
        for field, change in (a.changes or {}).items():
            if field == "payload":
                rows += [(f"payload.{k}", b, c) for k, b, c in _payload_diff(change["before"], change["after"])]
            else:
                rows.append((field, _shown(field, change["before"], locale), _shown(field, change["after"], locale)))
        author = a.author_user.get_full_name() or a.author_user.username if a.author_user else (
            a.author_api_key.name if a.author_api_key else "")
        out.append({"a": a, "author": author, "rows": rows, "dismissed": len(a.dismissed_decisions or [])})
    return out


def amend_initial(escalation: Escalation) -> dict[str, Any]:
    values = amendable_values(escalation)
    amount = values["amount"]
    return {"reason": values["reason"], "risk_level": values["risk_level"],
            "amount": from_minor(amount["value_minor"], amount["currency"]) if amount else "",
            "currency": amount["currency"] if amount else "NGN",
            "payload": json.dumps(values["payload"], ensure_ascii=False, indent=1)}


def requester_context(request: HttpRequest, escalation: Escalation, base: dict[str, Any]) -> dict[str, Any]:
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    approval = escalation.approval
    for d in base.get("decisions", []):
        d.dismissed = is_dismissed(d, approval)
    mine = is_case_requester(actor, escalation)
    is_open = escalation.status in OPEN_STATUSES
    comments = comments_of(escalation)
    my_user = actor.user.pk if actor.user else None
    return {
        "is_requester": mine,
        # Four eyes up front: the requester is told before any decision form, and offered their own actions.
        "can_decide": base.get("can_decide", False) and (not mine or approval.allow_self_approval),
        "can_acknowledge": base.get("can_acknowledge", False) and not mine,
        "can_cancel": mine and is_open, "can_amend": mine and is_open,
        "can_execute": mine and escalation.status == EscalationStatus.APPROVED,
        "can_ask": not mine and (actor.can(Capability.ESCALATION_DECIDE) or actor.can(Capability.ESCALATION_ACKNOWLEDGE))
        and is_open,
        "comments": comments, "latest_comments": [c for c in comments if c.replaced_by is None],
        "my_comment_ids": {str(c.comment.pk) for c in comments if c.comment.author_user_id == my_user},
        "awaiting_requester": awaiting_requester(escalation, comments),
        "amendments": amendment_views(escalation, actor.tenant.locale),
        "amend_form": base.get("amend_form") or AmendForm(initial=amend_initial(escalation)),
        "comment_form": base.get("comment_form") or CommentForm(),
        "cancel_form": base.get("cancel_form") or CancelForm(),
        "execution_form": base.get("execution_form") or ExecutionForm(),
    }
