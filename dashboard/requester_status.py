"""The status page of a requester known only by email (/r/<token>/): no sign-in, read-only, in their tenant's
language. The signed link (trustguard.links.requester_status_url) is the only key; what it shows is
escalations.requester_status's.

Anything we did not sign, a case whose requester was erased or changed: 404, like a case that does not exist
(nothing tells a guesser a case is there). A link past its days: 410, "This link has expired".
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.views.decorators.http import require_GET

from accounts.selectors import zone_of
from escalations.requester_status import requester_status, requester_status_case
from trustguard.links import RequesterLinkExpired, RequesterLinkInvalid, requester_status_claims

_SUPPORTED = {code for code, _ in settings.LANGUAGES}


def _private(response: HttpResponse) -> HttpResponse:
    # The token is the key: keep the page out of search engines, shared caches and other sites' Referer logs.
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def requester_status_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        escalation_id, email_digest = requester_status_claims(token)
    except RequesterLinkExpired:
        return _private(render(request, "dashboard/requester_link_expired.html", status=410))
    except RequesterLinkInvalid as exc:
        raise Http404("No such request.") from exc
    escalation = requester_status_case(escalation_id=escalation_id, email_digest=email_digest)
    if escalation is None:
        raise Http404("No such request.")
    tenant = escalation.tenant
    # The requester has no account: they read their tenant's language and time zone, whoever is signed in here.
    language = tenant.language if tenant.language in _SUPPORTED else settings.LANGUAGE_CODE
    translation.activate(language)
    request.LANGUAGE_CODE = language
    timezone.activate(zone_of(tenant=tenant))
    status = requester_status(escalation)
    return _private(render(request, "dashboard/requester_status.html",
                           {"s": status, "e": escalation, "tenant": tenant}))

