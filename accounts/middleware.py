"""The language of a page: the person's choice, else their tenant's, else the browser's (Accept-Language). And its
time zone: the person's, else their tenant's (selectors.zone_of), else the site's."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.middleware.locale import LocaleMiddleware
from django.utils import timezone, translation

from .models import Tenant
from .selectors import zone_of

_SUPPORTED = {code for code, _ in settings.LANGUAGES}


def preferred_language(request: HttpRequest) -> str:
    """The signed-in person's own language (User.language), or ""."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    language = getattr(user, "language", "")
    return str(language) if language in _SUPPORTED else ""


def activate_tenant_language(request: HttpRequest, tenant: Tenant, *, outsider: bool = False) -> None:
    """A person without a language of their own reads their tenant's, and times in their zone (accounts.web.
    tenant_view calls this once it knows the tenant: no query of its own). `outsider`: the page is for someone with
    no account (a requester's status link), who reads the tenant's language and zone whoever is signed in."""
    if (outsider or not preferred_language(request)) and tenant.language in _SUPPORTED:
        translation.activate(tenant.language)
        request.LANGUAGE_CODE = tenant.language
    user = None if outsider else getattr(request, "user", None)
    timezone.activate(zone_of(tenant=tenant, user=user if user is not None and user.is_authenticated else None))


class LanguageMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware (Vary and Content-Language on the response), choosing by the person first;
    their tenant's language comes next, set by accounts.web.tenant_view; then the browser's."""

    def process_request(self, request: HttpRequest) -> None:
        # A thread serves many requests: the zone the last one activated must not leak into this one.
        timezone.deactivate()
        if request.path.startswith("/api/"):
            # The API answers in English whatever Accept-Language says: its problem titles and field messages are
            # what integrations match on. (A person's messages still follow their language.)
            language = settings.LANGUAGE_CODE
        else:
            language = preferred_language(request) or translation.get_language_from_request(request)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
