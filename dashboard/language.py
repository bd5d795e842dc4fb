"""The person's language and time zone: the dashboard and their messages speak the one and show times in the other
(accounts.middleware; accounts.selectors.zone_of)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.actors import Actor
from accounts.selectors import zone_of
from accounts.services import user_preferences_set
from accounts.web import tenant_view
from trustguard.errors import ValidationFailed
from trustguard.zones import time_zone_names


@tenant_view
def language_settings(request: HttpRequest) -> HttpResponse:
    """GET: the choices; POST: save them (blank: the organisation's) and show the page in them."""
    actor: Actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    user = actor.user
    assert user is not None
    if request.method == "POST":
        try:
            user_preferences_set(user=user, language=request.POST.get("language", ""),
                                 time_zone=request.POST.get("time_zone", ""), actor=actor)
        except ValidationFailed as exc:
            field = next(iter(exc.errors or {"language": []}))
            messages.error(request, _("Choose one of the time zones offered.") if field == "time_zone"
                           else _("Choose one of the languages offered."))
            return redirect("dashboard:language")
        translation.activate(user.language or actor.tenant.language or settings.LANGUAGE_CODE)
        timezone.activate(zone_of(tenant=actor.tenant, user=user))
        messages.success(request, _("Saved. Your pages and messages now use them."))
        return redirect("dashboard:language")
    return render(request, "dashboard/language.html", {
        "languages": settings.LANGUAGES, "chosen": user.language,
        "tenant_language": dict(settings.LANGUAGES).get(actor.tenant.language or settings.LANGUAGE_CODE, ""),
        "time_zones": time_zone_names(), "chosen_zone": user.time_zone,
        "tenant_zone": zone_of(tenant=actor.tenant).key, "now": timezone.now()})
