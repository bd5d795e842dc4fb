"""Provider health as the operators read it: the selector behind the admin's "Provider health" page, the operators'
home and /healthz's "providers" check (settings.HEALTH_PROVIDER_ROWS). The providers and their checks:
notifications/providers.py."""

from __future__ import annotations

from typing import Any

from .deliveries.attempts import breaker_target
from .models import Delivery
from .providers import PROVIDERS, ProviderHealth, provider_health, register_push_provider


def provider_health_rows(*, fresh: bool = False) -> list[ProviderHealth]:
    """Per outside provider (email, SMS, push): its last successful delivery, its circuit breaker and an active check
    that sends nothing (notifications/providers.py). `fresh` runs the checks now instead of reading the kept ones.
    The admin's provider page, the operators' home and /healthz read this."""
    register_push_provider()
    # The breaker each channel's deliveries go through, by the delivery attempt's own rule (one place).
    return [
        provider_health(provider, breaker_target=breaker_target(Delivery(kind=provider.channel)), fresh=fresh)
        for provider in PROVIDERS.values()
    ]


def provider_health_report() -> dict[str, Any]:
    """/healthz's "providers" check (settings.HEALTH_PROVIDER_ROWS): warn when any provider is not ok, never fail."""
    rows = provider_health_rows()
    problems = [f"{row.channel}: {problem}" for row in rows for problem in row.problems]
    return {
        "status": "warn" if problems else "ok",
        "providers": {row.channel: row.as_json() for row in rows},
        **({"detail": "; ".join(problems)} if problems else {}),
    }
