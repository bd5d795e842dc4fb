"""The "I'm away" page: set an out-of-office period with a delegate (or nobody), see mine, end one.

Thin: reads through accounts.delegations' selectors, writes through its services (the rules are there), the
tenant's types from the engine's policies (escalations.delegation_api.tenant_types).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from accounts.delegations import (
    DelegationInput,
    delegation_create,
    delegation_of_away,
    delegation_revoke,
    delegations_of,
    eligible_delegates,
)
from accounts.web import tenant_view
from escalations.delegation_api import tenant_types
from trustguard.errors import DomainError, ValidationFailed

from .views import badge_context


def _when(raw: str) -> datetime | None:
    """A datetime-local value (naive: read in the away person's time zone by the service)."""
    try:
        return parse_datetime(raw.strip()) if raw.strip() else None
    except ValueError:
        return None


@require_http_methods(["GET", "POST"])
@tenant_view
def away(request: HttpRequest) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    people = eligible_delegates(tenant=actor.tenant, exclude=actor.user)
    types = sorted(tenant_types(actor))
    form: dict[str, Any] = {"delegate": "", "starts_at": "", "ends_at": "", "types": []}
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        form = {"delegate": request.POST.get("delegate", ""), "starts_at": request.POST.get("starts_at", ""),
                "ends_at": request.POST.get("ends_at", ""), "types": request.POST.getlist("types")}
        starts_at, ends_at = _when(form["starts_at"]), _when(form["ends_at"])
        if starts_at is None:
            errors["starts_at"] = [gettext("Choose when you leave.")]
        if ends_at is None:
            errors["ends_at"] = [gettext("Choose when you are back.")]
        delegate = None
        if form["delegate"]:
            delegate = next((p for p in people if str(p.pk) == form["delegate"]), None)
            if delegate is None:
                errors["delegate"] = [gettext("Choose someone from the list.")]
        if not errors:
            assert starts_at is not None and ends_at is not None
            try:
                delegation_create(actor=actor, delegator=actor.user, known_types=types,
                                  wanted=DelegationInput(delegate=delegate, starts_at=starts_at, ends_at=ends_at,
                                                         escalation_types=form["types"]))
            except ValidationFailed as exc:
                errors = {k: list(v) for k, v in (exc.errors or {}).items()} or {"general": [exc.detail]}
            except DomainError as exc:
                errors = {"general": [exc.detail]}
                status = exc.status
            else:
                messages.success(request, gettext("Out of office saved: %(who)s stands in for you.")
                                 % {"who": delegate.get_full_name() or delegate.username} if delegate
                                 else gettext("Out of office saved: nobody stands in for you."))
                return HttpResponseRedirect(reverse("dashboard:away"))
        status = status if status != 200 else 400
    now = timezone.now()
    mine = [(d, d.status_at(now)) for d in delegations_of(actor=actor).select_related("created_by")[:50]]
    context = {"people": people, "types": types, "form": form, "errors": errors, "mine": mine,
               "me": actor.user, "away_current": delegation_of_away(user=actor.user, tenant=actor.tenant),
               **badge_context(request)}
    return render(request, "dashboard/away.html", context, status=status)


@require_POST
@tenant_view
def away_end(request: HttpRequest, delegation_id: str) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    try:
        delegation_revoke(actor=actor, delegation_id=delegation_id)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, gettext("Out of office ended: your cases come back to you."))
    return HttpResponseRedirect(reverse("dashboard:away"))
