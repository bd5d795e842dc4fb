"""DRF authentication: `Authorization: Bearer <secret>` with a tenant API key or a personal token."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from trustguard.errors import NotAuthenticated

from .actors import Actor
from .services import credential_authenticate


class BearerAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Actor, Any] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthenticated("Use 'Authorization: Bearer <secret>'.", slug="invalid-credential")
        actor = credential_authenticate(secret.strip())
        return actor, actor.api_key or actor.token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="trustguard"'
