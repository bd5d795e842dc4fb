"""One log line per request: method, path, status, duration, tenant, actor and the correlation id.

With LOG_JSON (production) each is a field of the JSON line; the PII filter masks the message.
The actor is logged by type and id, never by name or email.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from . import context
from .logging import mask_pii

logger = logging.getLogger("trustguard.request")


def _who(request: HttpRequest) -> tuple[str, str]:
    """(tenant slug, "type:id") of whoever the request authenticated as (DRF sets request.user too)."""
    user: Any = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return "", "anonymous"
    tenant = getattr(user, "tenant", None)  # an accounts.actors.Actor
    if tenant is not None:
        return tenant.slug, f"{user.actor_type}:{user.actor_id}"
    return "", f"user:{user.pk}"


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            tenant, actor = _who(request)
            # The PII filter masks the message; extra fields are ours to mask.
            path = mask_pii(request.path)
            level = logging.ERROR if status >= 500 else logging.INFO
            logger.log(level, "%s %s %s %.1fms", request.method, path, status, duration_ms, extra={
                "request_id": context.current_request_id(), "method": request.method, "path": path,
                "status": status, "duration_ms": duration_ms, "tenant": tenant, "actor": actor,
            })
