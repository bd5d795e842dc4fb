"""Export jobs: a large export runs in a worker, reports progress, and leaves a file to download."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ExportDataset(models.TextChoices):
    ESCALATIONS = "escalations"
    DECISIONS = "decisions"
    AUDIT = "audit"


class ExportFormat(models.TextChoices):
    CSV = "csv"
    JSON = "json"
    XLSX = "xlsx"


class ExportJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+")
    requested_by_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+")
    requested_by_label = models.CharField(max_length=255)
    dataset = models.CharField(max_length=16, choices=ExportDataset.choices)
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.BigIntegerField(null=True, blank=True)
    rows_done = models.BigIntegerField(default=0)
    # Relative to settings.EXPORT_DIR; never a user-supplied path.
    file_name = models.CharField(max_length=200, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When a sweep last published its run again (the kick at creation was lost: the broker was down).
    kicked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="export_job_tenant_idx")]
        constraints = [
            models.CheckConstraint(condition=models.Q(rows_done__gte=0), name="export_job_rows_done_non_negative"),
        ]

    def __str__(self) -> str:
        return f"export {self.dataset}.{self.format} ({self.status})"

    @property
    def progress(self) -> float | None:
        """0.0 .. 1.0 once the row count is known."""
        if self.status == self.Status.DONE:
            return 1.0
        if not self.rows_total:
            return None if self.rows_total is None else 0.0
        return min(1.0, self.rows_done / self.rows_total)
