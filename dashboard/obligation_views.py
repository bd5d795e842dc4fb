"""The case page's obligation actions: add evidence, mark a condition met, waive it (escalations.obligation_actions)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts.web import tenant_view
from escalations.obligation_actions import condition_add_evidence, condition_resolve
from trustguard.errors import DomainError

from .forms import CHOOSE_A_CONDITION_ACTION, ConditionActionForm
from .views import _case_or_404, case_action

DONE = {"evidence": _("Evidence added."), "met": _("Condition marked met."), "waive": _("Condition waived.")}


def _problems(exc: DomainError) -> str:
    """Each field the service names, with why, at the top of the case (the inputs are one row per condition)."""
    return "; ".join(f"{name}: {' '.join(p)}" for name, p in (exc.errors or {}).items()) or exc.detail


@require_POST
@tenant_view
def condition_action(request: HttpRequest, pk: str, cid: str) -> HttpResponse:
    escalation = _case_or_404(request, pk)
    form = ConditionActionForm(request.POST)
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view

    def act() -> str:
        action, text = form.cleaned_data["action"], form.cleaned_data["text"]
        if action == "evidence":
            condition_add_evidence(actor=actor, escalation=escalation, condition_id=cid, note=text,
                                   url=form.cleaned_data["url"])
        else:
            condition_resolve(actor=actor, escalation=escalation, condition_id=cid,
                              status="met" if action == "met" else "waived", justification=text)
        return str(DONE[action])

    return case_action(request, pk, form, act, name="condition_form", invalid=str(CHOOSE_A_CONDITION_ACTION),
                       refuse=_problems)
