"""Standard-change templates (versioned by simple-history)."""

from __future__ import annotations

from django.db import models
from simple_history.models import HistoricalRecords

from .policy import RiskLevel


class ChangeTemplate(models.Model):
    """A standard change: defaults for a new escalation, optionally pre-approved within limits.

    Each save bumps `version`; simple-history keeps every version, and an escalation made from one records
    the version it used (Escalation.template), so editing a template never rewrites what was decided under it.
    """

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="change_templates")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=64, help_text="The escalation type (policy) it creates, e.g. OPERATION_CHANGE.")
    # {"reason", "risk_level", "urgency", "payload", "payload_schema", "justification"}: all optional.
    defaults = models.JSONField(default=dict, blank=True)
    pre_approved = models.BooleanField(default=False, help_text="Within its limits, approved at once.")
    max_amount_minor = models.BigIntegerField(null=True, blank=True,
                                              help_text="Pre-approval limit on amount (and estimated cost), minor units.")
    max_risk_level = models.CharField(max_length=8, choices=RiskLevel.choices, blank=True,
                                      help_text="Pre-approval limit: the highest risk level it covers.")
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["tenant", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="change_template_slug_unique"),
            models.CheckConstraint(condition=models.Q(max_amount_minor__isnull=True) | models.Q(max_amount_minor__gte=0),
                                   name="change_template_max_amount_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.slug} v{self.version}"
