"""The status page of a requester known only by email (/r/<token>/): no sign-in, read-only, in their tenant's
language. The signed link (trustguard.links.requester_status_url) is the only key; what it shows is
escalations.requester_status's. One write: the answer to an approver's open question (/r/<token>/answer/, a POST
with the CSRF token of the page; escalations.comments.comment_answer_by_emailed_requester).

Anything we did not sign, a case whose requester was erased or changed: 404, like a case that does not exist
(nothing tells a guesser a case is there). A link past its days: 410, "This link has expired".
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from accounts.middleware import activate_tenant_language
from escalations.comments import comment_answer_by_emailed_requester
from escalations.models import Escalation
from escalations.requester_status import requester_status, requester_status_case
from privacy.vault import requested_by_of
from trustguard.errors import Conflict, ValidationFailed
from trustguard.links import RequesterLinkExpired, RequesterLinkInvalid, requester_status_claims

from .forms import RequesterAnswerForm


def _private(response: HttpResponse, *, with_form: bool = False) -> HttpResponse:
    # The token is the key: keep the page out of search engines, shared caches and other sites' Referer logs.
    # A page with the answer form: "same-origin", which still tells other sites nothing, because under "no-referrer"
    # the browser posts the form with "Origin: null" and Django's CSRF check refuses it.
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "same-origin" if with_form else "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


def _case_of_link(request: HttpRequest, token: str) -> Escalation | HttpResponse:
    """The case the link opens, with its tenant's language and time zone active; the 410 page past the link's
    days; 404 for anything else."""
    try:
        escalation_id, email_digest = requester_status_claims(token)
    except RequesterLinkExpired:
        return _private(render(request, "dashboard/requester_link_expired.html", status=410))
    except RequesterLinkInvalid as exc:
        raise Http404("No such request.") from exc
    escalation = requester_status_case(escalation_id=escalation_id, email_digest=email_digest)
    if escalation is None:
        raise Http404("No such request.")
    # The requester has no account: they read their tenant's language and time zone, whoever is signed in here.
    activate_tenant_language(request, escalation.tenant, outsider=True)
    return escalation


def _page(request: HttpRequest, escalation: Escalation, token: str, *, form: RequesterAnswerForm | None = None,
          status: int = 200, notice: str = "") -> HttpResponse:
    status_now = requester_status(escalation)
    return _private(render(request, "dashboard/requester_status.html",
                           {"s": status_now, "e": escalation, "tenant": escalation.tenant,
                            "form": form or RequesterAnswerForm(), "notice": notice, "notice_error": status >= 400,
                            "answer_url": reverse("dashboard:requester_answer", args=[token])}, status=status),
                    with_form=bool(status_now.questions))


@require_GET
def requester_status_page(request: HttpRequest, token: str) -> HttpResponse:
    found = _case_of_link(request, token)
    if isinstance(found, HttpResponse):
        return found
    return _page(request, found, token, notice=gettext("Thank you: your answer was sent.") if "answered" in request.GET else "")


@require_POST
def requester_answer(request: HttpRequest, token: str) -> HttpResponse:
    """One answer per POST (the link is a bearer key: it may do this and nothing else); then back to the page."""
    found = _case_of_link(request, token)
    if isinstance(found, HttpResponse):
        return found
    form = RequesterAnswerForm(request.POST)
    if not form.is_valid():
        return _page(request, found, token, form=form, status=400)
    try:
        comment_answer_by_emailed_requester(escalation_id=str(found.pk), email=requested_by_of(found),
                                            body=form.cleaned_data["body"])
    except ValidationFailed as exc:  # the service's own rule on the body (the form checks the same first)
        form.add_error("body", exc.detail)
        return _page(request, found, token, form=form, status=400)
    except Conflict:  # closed, or answered meanwhile: the page says where it stands, with no form
        found.refresh_from_db()
        return _page(request, found, token, status=409, notice=gettext("There is no open question to answer on this request."))
    return _private(redirect(reverse("dashboard:requester_status", args=[token]) + "?answered=1"))
