"""Models of the cross-cutting API plumbing (the project app owns them)."""

from __future__ import annotations

from django.db import models


class IdempotencyKey(models.Model):
    """One `Idempotency-Key` of one credential: claimed before the view runs, then holds its response.

    The unique constraint is the claim: of two concurrent requests with one key, exactly one INSERT
    wins; the other sees the row (in flight -> 409, done -> replay, other body -> 422).
    """

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        DONE = "done"

    scope = models.CharField(max_length=64, help_text="Actor.credential_scope: keys are per credential.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of method, path and body.")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_unique")]

    def __str__(self) -> str:
        return f"{self.scope}/{self.key} ({self.state})"


class RateLimitWindow(models.Model):
    """A rate-limit counter where there is no Redis (trustguard/api/throttling.py): one row per credential or address.

    The window starts at the key's first request and ends at ends_at_ms (Unix ms); counting is one atomic upsert.
    """

    key = models.CharField(max_length=200, primary_key=True)
    ends_at_ms = models.BigIntegerField(db_index=True)
    count = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
