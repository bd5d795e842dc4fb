"""Content-Security-Policy for the HTML we serve (Django 5.2 has none built in).

No inline script or style anywhere in the dashboard: htmx reads its config from a meta tag and
everything else is a static file, so the policy can be strict. JSON API responses need no CSP.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

DEFAULT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_POLICY)
        # Pages that bring their own policy needs (e.g. API docs that load a UI bundle) are exempt.
        self.exempt = tuple(getattr(settings, "CONTENT_SECURITY_POLICY_EXEMPT_PREFIXES", ("/api/",)))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (self.policy and "Content-Security-Policy" not in response
                and response.get("Content-Type", "").startswith("text/html")
                and not request.path.startswith(self.exempt)):
            response["Content-Security-Policy"] = self.policy
        return response
