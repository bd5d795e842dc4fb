"""The language of a page: the person's choice, else their tenant's, else the browser's (Accept-Language)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.middleware.locale import LocaleMiddleware
from django.utils import translation

from .models import Tenant
from .web import SESSION_TENANT_KEY

_SUPPORTED = {code for code, _ in settings.LANGUAGES}


def preferred_language(request: HttpRequest) -> str:
    """The signed-in person's language (User.language, else the session tenant's Tenant.language), or ""."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    if getattr(user, "language", "") in _SUPPORTED:
        return str(user.language)
    tenant_id = request.session.get(SESSION_TENANT_KEY) if hasattr(request, "session") else None
    query = Tenant.objects.filter(memberships__user=user, memberships__is_active=True).exclude(language="")
    if tenant_id is not None:
        query = query.filter(pk=tenant_id)
    language = query.order_by("name", "pk").values_list("language", flat=True).first() or ""
    return language if language in _SUPPORTED else ""


class LanguageMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware (Vary and Content-Language on the response), choosing by the person first."""

    def process_request(self, request: HttpRequest) -> None:
        language = preferred_language(request) or translation.get_language_from_request(request)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
