"""Provider health as the operators read it: the selector behind the admin's "Provider health" page, the operators'
home and /healthz's "providers" check (settings.HEALTH_PROVIDER_ROWS). The providers and their checks:
notifications/providers.py."""

from __future__ import annotations

from typing import Any

from .breakers import breaker_state
from .deliveries.attempts import breaker_target
from .models import Delivery, PushSubscription
from .providers import PROVIDERS, ProviderHealth, provider_health, register_push_provider
from .push.sender import push_breaker_target, push_service_breaker_target

_WORST_FIRST = {"open": 0, "half-open": 1, "closed": 2}


def provider_health_rows(*, fresh: bool = False) -> list[ProviderHealth]:
    """Per outside provider (email, SMS, push): its last successful delivery, its circuit breaker and an active check
    that sends nothing (notifications/providers.py). `fresh` runs the checks now instead of reading the kept ones.
    The admin's provider page, the operators' home and /healthz read this."""
    register_push_provider()
    # The breaker each channel's deliveries go through, by the delivery attempt's own rule (one place).
    return [provider_health(provider, breaker_target=_breaker_of(provider.channel), fresh=fresh)
            for provider in PROVIDERS.values()]


def _breaker_of(channel: str) -> str:
    """The breaker a channel's deliveries go through. Push has one per push service (the browsers' vendors): the
    row reports the worst of those in use."""
    if channel != Delivery.Kind.PUSH:
        return breaker_target(Delivery(kind=channel))
    services = PushSubscription.objects.values_list("push_service", flat=True).distinct().order_by("push_service")
    targets = [push_service_breaker_target(service) for service in services] or [push_breaker_target("")]
    return min(targets, key=lambda target: _WORST_FIRST.get(breaker_state(target), 2))


def provider_health_report() -> dict[str, Any]:
    """/healthz's "providers" check (settings.HEALTH_PROVIDER_ROWS): warn when any provider is not ok, never fail."""
    rows = provider_health_rows()
    problems = [f"{row.channel}: {problem}" for row in rows for problem in row.problems]
    return {
        "status": "warn" if problems else "ok",
        "providers": {row.channel: row.as_json() for row in rows},
        **({"detail": "; ".join(problems)} if problems else {}),
    }
