"""A tenant's own words (its language pack)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords


class Term(models.Model):
    """A tenant's own word for a role, an escalation type, a reason or a status (its language pack), in one
    language or in all. Read through escalations.terminology.label, never directly."""

    class Kind(models.TextChoices):
        ROLE = "role", "Role"
        ESCALATION_TYPE = "escalation_type", "Escalation type"
        REASON = "reason", "Reason"
        STATUS = "status", "Status"

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="terms")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=200, help_text=(
        "What is named: a role (compliance_officer), a type (HIGH_VALUE), a status (pending) or a reason's exact "
        "text (flag vendor_flagged)."))
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES,
                                help_text="Blank: every language without a label of its own.")
    label = models.CharField(max_length=200, help_text="What people read instead, e.g. Directeur financier.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["tenant", "kind", "key", "language"]
        constraints = [models.UniqueConstraint(fields=["tenant", "kind", "key", "language"], name="term_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} [{self.language or '*'}] = {self.label}"
