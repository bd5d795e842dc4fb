"""The case page's obligation actions: add evidence, mark a condition met, waive it (escalations.obligation_actions)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from accounts.web import tenant_view
from escalations.obligation_actions import condition_add_evidence, condition_resolve
from trustguard.errors import DomainError

from .views import _after_success, _case_or_404, _respond_case

DONE = {"evidence": "Evidence added.", "met": "Condition marked met.", "waive": "Condition waived."}


@require_POST
@tenant_view
def condition_action(request: HttpRequest, pk: str, cid: str) -> HttpResponse:
    escalation = _case_or_404(request, pk)
    action = request.POST.get("action", "")
    text = request.POST.get("text", "")
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    try:
        if action == "evidence":
            condition_add_evidence(actor=actor, escalation=escalation, condition_id=cid, note=text,
                                   url=request.POST.get("url", ""))
        elif action in ("met", "waive"):
            condition_resolve(actor=actor, escalation=escalation, condition_id=cid,
                              status="met" if action == "met" else "waived", justification=text)
        else:
            return _respond_case(request, pk, status=400, action_error="Choose add evidence, met or waive.")
    except DomainError as exc:
        problems = "; ".join(f"{name}: {' '.join(p)}" for name, p in (exc.errors or {}).items())
        return _respond_case(request, pk, status=exc.status, action_error=problems or exc.detail)
    return _after_success(request, pk, DONE[action])
