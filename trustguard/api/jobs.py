"""Periodic jobs of the API plumbing (registered from TrustguardConfig.ready())."""

from __future__ import annotations

from django.utils import timezone

from trustguard.jobs import periodic_job
from trustguard.models import IdempotencyKey, RateLimitWindow

from .idempotency import KEY_TTL


@periodic_job("api.purge_idempotency_keys", order=500)
def purge_idempotency_keys() -> str:
    """Forget keys older than 24 h. One set-based DELETE: safe to run twice at once."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - KEY_TTL).delete()
    return f"purged {deleted} idempotency keys"


@periodic_job("api.purge_rate_limits", order=510)
def purge_rate_limits() -> str:
    """Forget rate-limit windows that ended (the counters of the database limiter; Redis expires its own)."""
    deleted, _ = RateLimitWindow.objects.filter(ends_at_ms__lt=int(timezone.now().timestamp() * 1000)).delete()
    return f"purged {deleted} rate-limit windows"
