"""Header data for dashboard pages, from what accounts.web already loaded (no extra queries, except the out-of-office
banner's one, made only when a page prints it)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .delegations import delegations_in_force


def dashboard(request: HttpRequest) -> dict[str, Any]:
    actor = getattr(request, "actor", None)
    return {
        "tenants": getattr(request, "tenants", []),
        "current_tenant": actor.tenant if actor is not None else None,
        # "You are away until ...": the delegation that has me away now, if any (read when the banner asks).
        "away_now": SimpleLazyObject(lambda: _away(actor)),
    }


def _away(actor: Any) -> Any:
    if actor is None or actor.user is None:
        return None
    # The tenant's delegations in force, as the page's other reads already have them (one query per request).
    return next((d for d in delegations_in_force(actor=actor) if d.delegator_id == actor.user.pk), None)
