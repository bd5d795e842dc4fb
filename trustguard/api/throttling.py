"""Rate limit per credential: settings.RATE_LIMIT_PER_MINUTE (TRUSTGUARD_RATE_LIMIT; 0 = off)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from accounts.actors import Actor


class CredentialRateThrottle(SimpleRateThrottle):
    """A sliding window in the cache (Redis in production, so all web processes share it).

    Keyed by the credential (API key or personal token), not the address: many vendors sit behind
    one NAT, and one vendor may call from many hosts. Anonymous calls (schema, docs) count per address.
    """

    scope = "credential"

    def get_rate(self) -> str | None:
        per_minute = settings.RATE_LIMIT_PER_MINUTE
        return f"{per_minute}/min" if per_minute else None

    def get_cache_key(self, request: Request, view: Any) -> str:
        actor = request.user
        ident = actor.credential_scope if isinstance(actor, Actor) else f"ip:{self.get_ident(request) or '-'}"
        return f"trustguard:throttle:{ident}"
