"""The one family of domain errors. Each carries an HTTP status and a problem type slug.

Services raise these; the API's exception handler and the dashboard views turn them into
problem+json or form errors without per-view code.
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://trustguard.dev/problems/"


class DomainError(Exception):
    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, errors: dict[str, list[str]] | None = None, slug: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        if slug:
            self.slug = slug
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def as_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status, "detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class ValidationFailed(DomainError):
    status, slug, title = 400, "validation-error", "Invalid request"


class NotAuthenticated(DomainError):
    status, slug, title = 401, "not-authenticated", "Authentication required"


class PermissionDenied(DomainError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict with the current state"


class Unprocessable(DomainError):
    status, slug, title = 422, "unprocessable", "Unprocessable request"


class TooManyRequests(DomainError):
    status, slug, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, slug: str | None = None) -> None:
        super().__init__(detail, slug=slug, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = max(1, int(retry_after))
