"""Who is acting: a user, a tenant API key (a source system), or a system job."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from .roles import API_KEY_CAPABILITIES

if TYPE_CHECKING:
    from .models import ApiKey, PersonalToken, Tenant, User


class Actor:
    """Passed explicitly to every service (``actor=``); never derived from a request inside one."""

    is_authenticated = True  # lets DRF treat an Actor as request.user

    def __init__(self, *, tenant: Tenant, user: User | None = None, api_key: ApiKey | None = None,
                 token: PersonalToken | None = None, system: str = "") -> None:
        if sum(bool(x) for x in (user, api_key, system)) != 1:
            raise ValueError("an actor is exactly one of: user, api_key, system")
        self.tenant = tenant
        self.user = user
        self.api_key = api_key
        self.token = token
        self.system = system

    @classmethod
    def for_system(cls, tenant: Tenant, job: str) -> Actor:
        return cls(tenant=tenant, system=job)

    def __repr__(self) -> str:
        return f"<Actor {self.actor_type}:{self.actor_label} in {self.tenant.slug}>"

    # --- identity (also the audit.services.AuditActor protocol) ---
    @property
    def actor_type(self) -> str:
        return "user" if self.user else "api_key" if self.api_key else "system"

    @property
    def actor_id(self) -> str:
        if self.user:
            return str(self.user.pk)
        if self.api_key:
            return str(self.api_key.pk)
        return self.system

    @property
    def actor_label(self) -> str:
        if self.user:
            return self.user.username
        if self.api_key:
            return f"api_key:{self.api_key.name}"
        return f"system:{self.system}"

    @property
    def credential_scope(self) -> str:
        """What idempotency keys and rate limits are scoped to."""
        if self.token:
            return f"token:{self.token.pk}"
        if self.api_key:
            return f"key:{self.api_key.pk}"
        if self.user:
            return f"user:{self.user.pk}"
        return f"system:{self.system}"

    # --- authority ---
    @cached_property
    def _authority(self) -> tuple[frozenset[str], frozenset[str]]:
        """A person's (roles, capabilities), read together once: most requests ask both."""
        from .selectors import user_authority

        assert self.user is not None
        return user_authority(user=self.user, tenant=self.tenant)

    @cached_property
    def roles(self) -> frozenset[str]:
        if not self.user:
            return frozenset()
        return self._authority[0]

    @cached_property
    def capabilities(self) -> frozenset[str]:
        if self.api_key:
            return API_KEY_CAPABILITIES
        if self.system:
            return frozenset()
        return self._authority[1]

    def can(self, capability: str) -> bool:
        """May this actor do `capability` in its tenant? The one question code asks."""
        return capability in self.capabilities
