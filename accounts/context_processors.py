"""Header data for dashboard pages, from what accounts.web already loaded (no extra queries)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def dashboard(request: HttpRequest) -> dict[str, Any]:
    actor = getattr(request, "actor", None)
    return {
        "tenants": getattr(request, "tenants", []),
        "current_tenant": actor.tenant if actor is not None else None,
    }
