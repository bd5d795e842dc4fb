"""The requester's pages: My requests, New escalation (with its live "this will need..." preview), and the
requester's and the conversation's actions on a case (cancel, report execution, amend, comment).

Thin like dashboard.views: Django forms shape the input, escalations' services decide, DomainErrors come back
as form errors with the error's status. "New escalation" uses the API's service (escalation_create) and the
API's idempotency claim (trustguard.api.idempotency.run_once): a double click creates one case.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.actors import Actor
from accounts.roles import Capability
from accounts.web import tenant_view
from escalations import services
from escalations.amendments import amendable_values, escalation_amend
from escalations.comments import comment_post
from escalations.models import ChangeTemplate, Policy
from escalations.my_requests import STATUS_FILTERS, MyRequestFilters, my_requests
from trustguard.api.idempotency import request_fingerprint, run_once
from trustguard.errors import DomainError

from .forms import (
    AmendForm,
    CancelForm,
    CommentForm,
    ExecutionForm,
    NewEscalationForm,
    PayloadFormSet,
    apply_domain_errors,
    payload_from,
    sentence,
)
from .views import _case_or_404, badge_context, case_action

MY_REQUESTS_PAGE = 100
# My requests' status filter: the option's word, and the word in "No requests open yet." (a request, feminine in French).
STATUS_FILTER_LABELS = {"open": pgettext_lazy("requests", "Open"), "closed": pgettext_lazy("requests", "Closed"),
                        "approved": pgettext_lazy("requests", "Approved"), "all": pgettext_lazy("requests", "All")}
STATUS_FILTER_WORDS = {"open": gettext_lazy("open"), "closed": gettext_lazy("closed"), "approved": gettext_lazy("approved")}


@require_GET
@tenant_view
def my_requests_page(request: HttpRequest) -> HttpResponse:
    """Everything I asked for (as myself, or named by a source as requested_by): status, what it still needs,
    deadlines; filters by status, type and text."""
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    filters = MyRequestFilters.from_query(request.GET)
    rows = list(my_requests(actor=actor, filters=filters)[:MY_REQUESTS_PAGE])
    types = list(Policy.objects.filter(tenant=actor.tenant, is_active=True).order_by("type").values_list("type", flat=True))
    return render(request, "dashboard/my_requests.html", {
        "rows": rows, "filters": filters, "status_filters": [(s, STATUS_FILTER_LABELS[s]) for s in STATUS_FILTERS],
        "status_word": STATUS_FILTER_WORDS.get(filters.status, ""), "types": types,
        "page_size": MY_REQUESTS_PAGE, "can_create": actor.can(Capability.ESCALATION_CREATE_MANUAL),
        **badge_context(request)})


def _types(actor: Any) -> list[tuple[str, str]]:
    return [(p.type, f"{p.name} ({p.type})")
            for p in Policy.objects.filter(tenant=actor.tenant, is_active=True).order_by("name")]


def _templates(actor: Actor) -> list[tuple[str, str]]:
    """The tenant's active templates (standard changes) a request may start from."""
    return [(t.slug, (gettext("%(name)s (%(type)s, pre-approved within limits)") if t.pre_approved else "%(name)s (%(type)s)")
             % {"name": t.name, "type": t.type})
            for t in ChangeTemplate.objects.filter(tenant=actor.tenant, is_active=True).order_by("name")]


@require_http_methods(["GET", "POST"])
@tenant_view
def new_escalation(request: HttpRequest) -> HttpResponse:
    """Ask for a decision by hand (escalation.create_manual): the API's create, once per form shown."""
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    if not actor.can(Capability.ESCALATION_CREATE_MANUAL):
        return render(request, "dashboard/new_escalation.html", {"forbidden": True, **badge_context(request)},
                      status=403)
    form = NewEscalationForm(request.POST or None, types=_types(actor), templates=_templates(actor))
    payload_rows = PayloadFormSet(request.POST or None, prefix="payload")
    if request.method == "GET":
        return _new_page(request, form, payload_rows)
    if not (form.is_valid() and payload_rows.is_valid()):
        return _new_page(request, form, payload_rows, status=400)

    def create() -> HttpResponse:
        kwargs = form.service_kwargs(payload_from(payload_rows))
        if form.errors:  # the amount did not read as money
            return _new_page(request, form, payload_rows, status=400)
        try:
            escalation = services.escalation_create(actor=actor, **kwargs)
        except DomainError as exc:
            apply_domain_errors(form, exc.errors, sentence(exc.detail))
            return _new_page(request, form, payload_rows, status=exc.status)
        messages.success(request, gettext("Your escalation is open. Follow it here and in My requests."))
        return HttpResponseRedirect(reverse("dashboard:detail", args=[escalation.pk]))

    response = run_once(scope=f"web:user:{actor.user.pk}:tenant:{actor.tenant.pk}",
                        key=form.cleaned_data["idempotency_key"],
                        fingerprint=request_fingerprint("POST", request.path, _form_body(request)),
                        method="POST", path=request.path, handler=create)
    if response.get("Content-Type", "").startswith("application/problem+json"):
        # The same form sent again while the first is still being created (or changed after it was): the case
        # exists or is about to; My requests shows it.
        messages.info(request, gettext("This request was already sent; it is in your requests."))
        return HttpResponseRedirect(reverse("dashboard:my_requests"))
    return response


def _form_body(request: HttpRequest) -> bytes:
    """The form's content (its fields, sorted; not the CSRF token): what makes two submissions the same request."""
    fields = request.POST.copy()
    fields.pop("csrfmiddlewaretoken", None)
    return "&".join(f"{k}={v}" for k, values in sorted(fields.lists()) for v in values).encode()


def _new_page(request: HttpRequest, form: NewEscalationForm, payload_rows: Any, status: int = 200) -> HttpResponse:
    return render(request, "dashboard/new_escalation.html",
                  {"form": form, "payload_rows": payload_rows, **badge_context(request)}, status=status)


@require_POST
@tenant_view
def new_escalation_preview(request: HttpRequest) -> HttpResponse:
    """The live "this will need..." of the form: the very dry run of POST /escalations/check."""
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    form = NewEscalationForm(request.POST, types=_types(actor), templates=_templates(actor))
    form.is_valid()  # partial input is fine: the preview reads what is there
    data = form.cleaned_data
    money = form.clean_money() if "amount" in data else None
    cost = form.clean_cost() if "estimated_cost" in data else None
    payload_rows = PayloadFormSet(request.POST, prefix="payload")
    payload = payload_from(payload_rows) if payload_rows.is_valid() else {}
    result, error = None, ""
    try:
        from escalations.conditions import request_facts
        from escalations.intake import Money

        amount = Money(money["value_minor"], money["currency"]) if money else None
        estimated = Money(cost["value_minor"], cost["currency"]) if cost else None
        # The facts a create would give the route's conditions (conditions.request_facts), so a conditional stage
        # shows here exactly when it would apply.
        facts = request_facts(amount=amount, estimated_cost=estimated, risk_level=data.get("risk_level") or None,
                              urgency=data.get("urgency") or "normal", source_system=data.get("source_system", ""),
                              source_entity_type=data.get("source_entity_type", ""), payload=payload)
        result = services.escalation_check(
            actor=actor, type=data.get("type") or None, amount=amount, estimated_cost=estimated,
            risk_level=data.get("risk_level") or None, facts=facts)
    except DomainError as exc:
        error = sentence(exc.detail)
    return render(request, "dashboard/partials/check_preview.html", {"check": result, "error": error})


# --- the requester's and the conversation's actions on a case (one shape: views.case_action) ----------------

@require_POST
@tenant_view
def cancel(request: HttpRequest, pk: str) -> HttpResponse:
    escalation = _case_or_404(request, pk)
    form = CancelForm(request.POST)

    def act() -> str:
        services.escalation_cancel(actor=request.actor, escalation=escalation,  # type: ignore[attr-defined]  # set by tenant_view
                                   reason=form.cleaned_data["reason"])
        return gettext("Cancelled. The approvers were told.")

    return case_action(request, pk, form, act, name="cancel_form", invalid=gettext("Say why you cancel."))


@require_POST
@tenant_view
def execute(request: HttpRequest, pk: str) -> HttpResponse:
    escalation = _case_or_404(request, pk)
    form = ExecutionForm(request.POST)

    def act() -> str:
        services.escalation_record_execution(actor=request.actor, escalation=escalation,  # type: ignore[attr-defined]  # set by tenant_view
                                             result=form.result_dict())
        return gettext("Recorded as executed.")

    return case_action(request, pk, form, act, name="execution_form", invalid=gettext("Say what was done."))


@require_POST
@tenant_view
def amend(request: HttpRequest, pk: str) -> HttpResponse:
    """Change the request (AMENDABLE_FIELDS) with a justification: earlier approvals are dismissed."""
    escalation = _case_or_404(request, pk)
    form = AmendForm(request.POST, current=amendable_values(escalation))

    def act() -> str:
        escalation_amend(actor=request.actor, escalation=escalation,  # type: ignore[attr-defined]  # set by tenant_view
                         changes=form.cleaned_data["changes"], justification=form.cleaned_data.get("justification", ""))
        return gettext("Amended. Earlier approvals are dismissed; the route starts again.")

    return case_action(request, pk, form, act, name="amend_form", invalid=gettext("Check the amendment."))


@require_POST
@tenant_view
def comment(request: HttpRequest, pk: str) -> HttpResponse:
    escalation = _case_or_404(request, pk)
    form = CommentForm(request.POST)

    def act() -> str:
        data = form.cleaned_data
        comment_post(actor=request.actor, escalation=escalation,  # type: ignore[attr-defined]  # set by tenant_view
                     body=data["body"], question=data.get("question", False),
                     replaces=str(data["replaces"]) if data.get("replaces") else None)
        return gettext("Question sent to the requester.") if data.get("question") else gettext("Comment added.")

    return case_action(request, pk, form, act, name="comment_form", invalid=gettext("Check the comment."), anchor="#conversation")
