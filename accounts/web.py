"""The dashboard's notion of "who is acting where": the current tenant lives in the session."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .actors import Actor
from .middleware import activate_tenant_language
from .models import Tenant
from .selectors import tenants_of

SESSION_TENANT_KEY = "tenant_id"


def current_tenant(request: HttpRequest) -> Tenant | None:
    """The tenant chosen in the session if the person still belongs to it, else their first tenant.

    Re-checked on every request: a membership removed by an operator takes effect at once.
    """
    tenants = list(tenants_of(user=request.user).order_by("name", "pk"))  # type: ignore[arg-type]
    request.tenants = tenants  # type: ignore[attr-defined]  # the switcher prints these
    chosen = request.session.get(SESSION_TENANT_KEY)
    for tenant in tenants:
        if tenant.pk == chosen:
            return tenant
    return tenants[0] if tenants else None


def tenant_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Login required; sets request.actor (Actor of the current tenant) or explains there is none."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        tenant = current_tenant(request)
        if tenant is None:
            return render(request, "dashboard/no_tenant.html", status=403)
        request.actor = Actor(tenant=tenant, user=request.user)  # type: ignore[attr-defined,arg-type]
        activate_tenant_language(request, tenant)
        return view(request, *args, **kwargs)

    return wrapper
