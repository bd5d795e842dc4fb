"""The DRF-create floor's table: the fields an escalation's create carries, nothing else (no tenant, no
policy, no audit): what a DRF ModelSerializer create costs on this server."""

from django.db import models


class FloorEscalation(models.Model):
    reason = models.CharField(max_length=500)
    source_system = models.CharField(max_length=64)
    source_entity_type = models.CharField(max_length=64)
    source_entity_id = models.CharField(max_length=128)
    source_url = models.URLField(blank=True)
    amount_minor = models.BigIntegerField(null=True)
    currency = models.CharField(max_length=3, blank=True)
    urgency = models.CharField(max_length=16, default="normal")
    payload = models.JSONField(default=dict)
    requested_by = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.source_entity_id
