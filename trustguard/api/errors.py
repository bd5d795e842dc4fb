"""One exception handler: every API error becomes application/problem+json (RFC 9457)."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpResponse
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from trustguard.errors import PROBLEM_BASE, DomainError

from .collisions import collision, conflict_body_args, mark_conflict

logger = logging.getLogger(__name__)
PROBLEM_CONTENT_TYPE = "application/problem+json"

_DRF_SLUGS = {
    exceptions.ParseError: ("malformed-request", "Malformed request"),
    exceptions.AuthenticationFailed: ("not-authenticated", "Authentication required"),
    exceptions.NotAuthenticated: ("not-authenticated", "Authentication required"),
    exceptions.PermissionDenied: ("forbidden", "Not allowed"),
    exceptions.NotFound: ("not-found", "Not found"),
    exceptions.MethodNotAllowed: ("method-not-allowed", "Method not allowed"),
    exceptions.NotAcceptable: ("not-acceptable", "Not acceptable"),
    exceptions.UnsupportedMediaType: ("unsupported-media-type", "Unsupported media type"),
    exceptions.Throttled: ("too-many-requests", "Too many requests"),
    exceptions.ValidationError: ("validation-error", "Invalid request"),
}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail -> {"field.sub": ["message", ...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else "_"
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else str(name)))
    elif isinstance(detail, list) and detail and all(not isinstance(d, (dict, list)) for d in detail):
        out[prefix or "_"] = [str(d) for d in detail]
    elif isinstance(detail, list):
        for i, value in enumerate(detail):
            out.update(_flatten(value, f"{prefix}[{i}]"))
    else:
        out[prefix or "_"] = [str(detail)]
    return out


def problem_body(status_code: int, slug: str, title: str, detail: str,
                 errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status_code, "detail": detail}
    if errors:
        body["errors"] = errors
    return body


def problem_http_response(status_code: int, slug: str, title: str, detail: str, *,
                          errors: dict[str, list[str]] | None = None,
                          headers: dict[str, str] | None = None) -> HttpResponse:
    """A problem+json answer for plain Django code (middleware), outside DRF's exception handler."""
    body = problem_body(status_code, slug, title, detail, errors)
    response = HttpResponse(json.dumps(body), status=status_code, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = Response(body, status=body["status"], headers=headers, content_type=PROBLEM_CONTENT_TYPE)
    return response


def _render_as_json(context: dict[str, Any]) -> None:
    """Problems are JSON even from views whose renderers are YAML, CSV or XLSX (schema, exports)."""
    request = context.get("request")
    if request is not None:
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = "application/json"


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    _render_as_json(context)
    if isinstance(exc, DomainError):
        domain_headers = dict(exc.headers)
        if exc.status == 401:
            domain_headers.setdefault("WWW-Authenticate", 'Bearer realm="trustguard"')
        return problem_response(exc.as_problem(), domain_headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        if collision(exc):  # a concurrent write got in the way: docs/CONCURRENCY.md
            return mark_conflict(problem_response(problem_body(*conflict_body_args()), {"Retry-After": "1"}))
        return None  # a real bug: let Django log it and answer 500
    slug, title = next(((s, t) for cls, (s, t) in _DRF_SLUGS.items() if isinstance(exc, cls)), ("error", "Error"))
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": exc.status_code}
    headers: dict[str, str] = {}
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        body["detail"] = "Invalid fields: " + ", ".join(sorted(errors))
        body["errors"] = errors
    else:
        body["detail"] = str(exc.detail)
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    if exc.status_code == status.HTTP_401_UNAUTHORIZED:
        headers["WWW-Authenticate"] = 'Bearer realm="trustguard"'
    return problem_response(body, headers)
