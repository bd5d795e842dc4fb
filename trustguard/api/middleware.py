"""Guards for everything under /api/: whatever goes wrong, the answer is problem+json.

- A body over settings.MAX_REQUEST_BODY_BYTES: 413 before anything reads it.
- NUL characters in the query string: 400 (PostgreSQL cannot store or compare them).
- A query parameter the OpenAPI schema does not document for the operation, or a value outside what it
  documents (enum, type, length, pattern): 400 naming it, for every view (trustguard.api.schema).
- Django's own HTML error pages (unknown URL, a crash in a middleware) become problem+json.
- A view that raises a non-API exception (a bug): logged with its traceback, answered as a 500 problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from .concurrency import collision, conflict_response
from .errors import PROBLEM_CONTENT_TYPE, problem_http_response
from .schema import query_errors, query_parameters

logger = logging.getLogger("trustguard.api")

API_PREFIX = "/api/"
_TITLES = {400: "Invalid request", 401: "Authentication required", 403: "Not allowed", 404: "Not found",
           405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 413: "Request body too large",
           415: "Unsupported media type", 422: "Unprocessable request", 429: "Too many requests",
           500: "Internal error", 503: "Service unavailable"}
_SLUGS = {400: "bad-request", 401: "not-authenticated", 403: "forbidden", 404: "not-found",
          405: "method-not-allowed", 406: "not-acceptable", 409: "conflict", 413: "payload-too-large",
          415: "unsupported-media-type", 422: "unprocessable", 429: "too-many-requests", 500: "internal-error",
          503: "service-unavailable"}


def _too_large() -> HttpResponse:
    limit = settings.MAX_REQUEST_BODY_BYTES
    return problem_http_response(413, "payload-too-large", "Request body too large",
                                 f"The request body is larger than {limit} bytes.")


def _is_json(response: HttpResponse) -> bool:
    content_type = response.get("Content-Type", "")
    return content_type.startswith(("application/json", PROBLEM_CONTENT_TYPE))


class ApiGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return problem_http_response(400, "bad-request", "Invalid request", "Content-Length is not a number.")
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return _too_large()
        bad = sorted({key for key, values in request.GET.lists() if "\x00" in key or any("\x00" in v for v in values)})
        if bad or "\x00" in request.path:
            return problem_http_response(400, "validation-error", "Invalid request",
                                         "NUL characters are not allowed in the URL.",
                                         errors={(key.replace("\x00", "") or "_"): ["NUL characters are not allowed."]
                                                 for key in bad} or None)
        documented = query_parameters(request.method or "GET", request.path)
        if documented is not None and (errors := query_errors(request.GET, documented)):
            # One rule for every view: what the OpenAPI schema does not document (or allow) is refused.
            return problem_http_response(400, "validation-error", "Invalid request",
                                         "Invalid query parameters: " + ", ".join(sorted(errors)), errors=errors)
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response):
            status = response.status_code
            detail = ("No API endpoint at this URL; see /api/docs/." if status == 404
                      else "The request could not be processed.")
            converted = problem_http_response(status, _SLUGS.get(status, "error"), _TITLES.get(status, "Error"), detail)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if response.has_header(header):
                    converted[header] = response[header]
            return converted
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            return _too_large()
        if collision(exception):  # outside DRF's handler (docs/CONCURRENCY.md)
            return conflict_response()
        # The last resort. There must be no input that gets here: each one is a bug to fix.
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return problem_http_response(500, "internal-error", "Internal error",
                                     "An unexpected error occurred; it has been logged.")
