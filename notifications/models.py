"""The transactional outbox: versioned events written in the business transaction."""

from __future__ import annotations

import uuid

from django.db import models


class OutboxEvent(models.Model):
    """One domain event. Written with the change; relayed to subscribers after commit."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=64)
    version = models.PositiveSmallIntegerField(default=1)
    aggregate_type = models.CharField(max_length=64)
    aggregate_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    relayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The relay's queue: only unrelayed rows are indexed, so the index stays tiny.
            models.Index(fields=["id"], name="outbox_unrelayed_idx", condition=models.Q(relayed_at__isnull=True)),
            models.Index(fields=["aggregate_type", "aggregate_id", "id"], name="outbox_aggregate_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.aggregate_type}:{self.aggregate_id}"

    def envelope(self) -> dict[str, object]:
        """The wire format of CONTRACT.md: {id, type, version, occurred_at, tenant, data}."""
        return {
            "id": str(self.event_id),
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "tenant": self.tenant.slug,
            "data": self.data,
        }
