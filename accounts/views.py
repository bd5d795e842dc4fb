"""Sign-in, sign-out, authenticator enrolment and the tenant switcher."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from trustguard.errors import DomainError

from .actors import Actor
from .selectors import tenants_of
from .totp import has_confirmed_device, qr_svg, secret_base32, totp_enrolment_confirm, totp_enrolment_start
from .web import SESSION_TENANT_KEY, current_tenant


class LoginView(auth_views.LoginView):
    """Django's login (django-axes counts failures through the authentication backend)."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django's LogoutView refuses GET), so a link on another site cannot sign anyone out."""

    next_page = "/accounts/login/"


@login_required
def totp_enrol(request: HttpRequest) -> HttpResponse:
    """Show a QR code for a new authenticator, and confirm it with a code before it counts."""
    user = request.user
    if has_confirmed_device(user):  # type: ignore[arg-type]  # login_required: a User, not AnonymousUser
        return render(request, "accounts/totp_done.html")
    device = totp_enrolment_start(user=user)  # type: ignore[arg-type]  # login_required: a User, not AnonymousUser
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        tenant = current_tenant(request)
        actor = Actor(tenant=tenant, user=user) if tenant else None  # type: ignore[arg-type]  # login_required: a User, not AnonymousUser
        try:
            totp_enrolment_confirm(user=user, device_id=device.pk, code=request.POST.get("code", ""),  # type: ignore[arg-type]  # login_required: a User, not AnonymousUser
                                   actor=actor)
        except DomainError as exc:
            errors, status = exc.errors or {"code": [exc.detail]}, exc.status
        else:
            messages.success(request, gettext("Your authenticator is set up. You will use its codes to sign off decisions."))
            return redirect("dashboard:queue")
    return render(request, "accounts/totp_enrol.html", {
        "qr_svg": qr_svg(device.config_url), "secret": secret_base32(device), "errors": errors,
    }, status=status)


@require_POST
@login_required
def tenant_switch(request: HttpRequest) -> HttpResponse:
    """Choose the tenant to work in (only one the person belongs to)."""
    wanted = request.POST.get("tenant", "")
    valid = wanted.isascii() and wanted.isdigit() and len(wanted) <= 18  # never an out-of-range query
    tenant = tenants_of(user=request.user).filter(pk=int(wanted)).first() if valid else None  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
    if tenant is None:
        messages.error(request, gettext("You do not belong to that organisation."))
    else:
        request.session[SESSION_TENANT_KEY] = tenant.pk
        messages.info(request, gettext("You are now working in %(tenant)s.") % {"tenant": tenant.name})
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        target = "/"
    # A case of the old tenant is not visible in the new one: go to the queue instead.
    return redirect("/" if target.startswith("/e/") else target)
