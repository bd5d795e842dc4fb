"""The dashboard's notion of "who is acting where": the current tenant lives in the session."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render

from .actors import Actor
from .middleware import activate_tenant_language
from .models import Tenant, User
from .selectors import tenants_of

SESSION_TENANT_KEY = "tenant_id"


class UserRequest(HttpRequest):
    """The request of a login_required view: its user is a signed-in person (django-stubs' way to type it)."""

    user: User


class TenantRequest(UserRequest):
    """The request a tenant_view sees: tenant_view has set `actor` (and `tenants`, for the switcher)."""

    actor: Actor
    tenants: list[Tenant]


def current_tenant(request: HttpRequest) -> Tenant | None:
    """The tenant chosen in the session if the person still belongs to it, else their first tenant.

    Re-checked on every request: a membership removed by an operator takes effect at once.
    """
    tenants = list(tenants_of(user=request.user).order_by("name", "pk"))  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
    request.tenants = tenants  # type: ignore[attr-defined]  # the switcher prints these
    chosen = request.session.get(SESSION_TENANT_KEY)
    for tenant in tenants:
        if tenant.pk == chosen:
            return tenant
    return tenants[0] if tenants else None


def tenant_view(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Login required; sets request.actor (Actor of the current tenant) or explains there is none."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        tenant = current_tenant(request)
        if tenant is None:
            return render(request, "dashboard/no_tenant.html", status=403)
        request.actor = Actor(tenant=tenant, user=request.user)  # type: ignore[attr-defined,arg-type]  # tenant_view's own: sets actor; the user is signed in
        activate_tenant_language(request, tenant)
        return view(request, *args, **kwargs)

    return wrapper
