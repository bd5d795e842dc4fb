"""The person's language setting: the dashboard and their messages speak it (accounts.middleware)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.services import user_language_set
from accounts.web import tenant_view
from trustguard.errors import ValidationFailed


@tenant_view
def language_settings(request: HttpRequest) -> HttpResponse:
    """GET: the choice; POST: save it (blank: the organisation's language) and show the page in it."""
    user = request.user
    if request.method == "POST":
        try:
            user_language_set(user=user, language=request.POST.get("language", ""),  # type: ignore[arg-type]  # tenant_view: signed in
                              actor=request.actor)  # type: ignore[attr-defined]  # set by tenant_view
        except ValidationFailed:
            messages.error(request, _("Choose one of the languages offered."))
            return redirect("dashboard:language")
        translation.activate(user.language or request.actor.tenant.language  # type: ignore[attr-defined,union-attr]  # tenant_view: signed in, actor set
                             or settings.LANGUAGE_CODE)
        messages.success(request, _("Language saved. Your pages and messages now use it."))
        return redirect("dashboard:language")
    return render(request, "dashboard/language.html", {
        "languages": settings.LANGUAGES, "chosen": getattr(user, "language", ""),
        "tenant_language": dict(settings.LANGUAGES).get(request.actor.tenant.language  # type: ignore[attr-defined]  # set by tenant_view
                                                        or settings.LANGUAGE_CODE, "")})
