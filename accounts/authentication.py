"""DRF authentication: `Authorization: Bearer <secret>` with a tenant API key or a personal token."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from trustguard.errors import NotAuthenticated

from .actors import Actor
from .services import credential_authenticate

_REQUEST_ACTOR = "_trustguard_bearer_actor"


def bearer_secret(request: HttpRequest) -> str | None:
    """The secret of an `Authorization: Bearer <secret>` header; None when the header is another scheme
    or empty."""
    authorization: str = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def bearer_actor(request: HttpRequest, secret: str) -> Actor:
    """credential_authenticate, once per request: the idempotency middleware (to scope the key) and
    DRF (to authorise the view) both ask, and each lookup is a query."""
    cached: tuple[str, Actor] | None = getattr(request, _REQUEST_ACTOR, None)
    if cached is not None and cached[0] == secret:
        return cached[1]
    actor = credential_authenticate(secret)
    setattr(request, _REQUEST_ACTOR, (secret, actor))
    return actor


class BearerAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Actor, Any] | None:
        if not request.META.get("HTTP_AUTHORIZATION", ""):
            return None
        secret = bearer_secret(request._request)
        if secret is None:
            raise NotAuthenticated("Use 'Authorization: Bearer <secret>'.", slug="invalid-credential")
        actor = bearer_actor(request._request, secret)
        return actor, actor.api_key or actor.token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="trustguard"'
