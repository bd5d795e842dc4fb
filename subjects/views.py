"""The case page's "Reveal full values" (privacy.manage; audited)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from accounts.web import tenant_view
from escalations.selectors import escalation_for_page
from privacy import vault
from trustguard.errors import PermissionDenied

from .services import values_reveal


@require_POST
@tenant_view
def reveal(request: HttpRequest, pk: str) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    escalation = escalation_for_page(actor=actor, pk=pk)
    if escalation is None:
        raise Http404("No such escalation.")  # another tenant's, or not visible: no existence leak
    try:
        contact, payload = values_reveal(actor=actor, escalation=escalation)
    except PermissionDenied:
        return HttpResponse("Revealing personal data needs privacy.manage.", status=403, content_type="text/plain")
    return render(request, "privacy/contact_panel.html", {
        "e": escalation, "revealed": True, "revealed_contact": contact,
        # Pairs, not the dict: a payload key such as "items" would shadow dict.items in the template.
        "revealed_payload": [(k, payload[k]) for k in vault.sealed_payload_fields(escalation.payload)]})
