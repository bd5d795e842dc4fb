"""Correlation ids: taken from X-Request-ID (if sane) or generated, echoed in the response."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from . import context

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def client_ip(request: HttpRequest) -> str | None:
    """The client's address for the audit log and login lockouts.

    REMOTE_ADDR, unless TRUSTGUARD_BEHIND_PROXY says a reverse proxy is the only way in: then the last
    entry of TRUSTGUARD_PROXY_CLIENT_IP_HEADER (X-Forwarded-For), the one that proxy appended. Earlier entries are
    whatever the client sent (trivially forged), and a forged address in an audit log (or a rate limit keyed by it)
    is worse than a proxy's address.
    """
    if settings.BEHIND_PROXY:
        header = "HTTP_" + settings.PROXY_CLIENT_IP_HEADER.upper().replace("-", "_")
        forwarded: str = request.META.get(header, "").rsplit(",", 1)[-1].strip()
        if forwarded:
            return forwarded[:64]
    return request.META.get("REMOTE_ADDR") or None


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else context.new_request_id()
        ctx = context.RequestContext(
            request_id=request_id,
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:512],
        )
        request.request_id = request_id  # type: ignore[attr-defined]  # our attribute on the request
        token = context.bind(ctx)
        try:
            response = self.get_response(request)
        finally:
            context.reset(token)
        response["X-Request-ID"] = request_id
        return response
