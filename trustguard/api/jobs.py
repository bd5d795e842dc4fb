"""Periodic jobs of the API plumbing: Celery tasks that beat runs (trustguard.periodic), imported by TrustguardConfig.ready()."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from trustguard.models import IdempotencyKey, RateLimitWindow

from .idempotency import KEY_TTL


@shared_task(name="api.purge_idempotency_keys", ignore_result=True, acks_late=True)
def purge_idempotency_keys() -> str:
    """Forget keys older than 24 h. One set-based DELETE: safe to run twice at once."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - KEY_TTL).delete()
    return f"purged {deleted} idempotency keys"


@shared_task(name="api.purge_rate_limits", ignore_result=True, acks_late=True)
def purge_rate_limits() -> str:
    """Forget rate-limit windows that ended (the counters of the database limiter; Redis expires its own)."""
    deleted, _ = RateLimitWindow.objects.filter(ends_at_ms__lt=int(timezone.now().timestamp() * 1000)).delete()
    return f"purged {deleted} rate-limit windows"
