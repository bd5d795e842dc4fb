"""Export jobs and audited downloads.

An export is a disclosure of regulated data, so each one is audited: who asked, which dataset,
which filters. Large exports run as a job in a worker (POST /exports), which reports progress
and leaves a file only the same tenant, with audit.export, may download.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.actors import Actor
from accounts.roles import Capability
from audit.actions import AuditAction
from audit.services import audit_record
from trustguard import metrics
from trustguard.broker import broker_publish, broker_publish_one
from trustguard.errors import Conflict, NotFound, PermissionDenied

from .exports import DATASETS, ExportFilters, write_export
from .models import ExportFormat, ExportJob

logger = logging.getLogger(__name__)
# A job still "running" after this long lost its worker (acks_late gave the task back): take it over.
STALE_RUNNING_AFTER = timedelta(hours=2)
# A job still queued this long after it was created, or after a sweep last kicked it, missed its kick (the broker
# was down, or a worker lost it): reports.kick_queued_exports publishes its run again.
KICK_QUEUED_AFTER = timedelta(seconds=60)
KICK_AGAIN_AFTER = timedelta(minutes=10)
EXPORT_TASK = "reports.export_job_run"


def require_capability(actor: Actor, capability: str) -> None:
    if not actor.can(capability):
        raise PermissionDenied(f"this needs {capability}", slug="missing-capability")


@transaction.atomic
def export_download_record(*, actor: Actor, dataset: str, fmt: str, filters: ExportFilters) -> None:
    """Authorise and audit a direct download (the stream itself runs after this commits)."""
    require_capability(actor, Capability.AUDIT_EXPORT)
    audit_record(tenant_id=actor.tenant.pk, action=AuditAction.EXPORT_DOWNLOADED, actor=actor, target_type="export",
                 target_id=f"{dataset}.{fmt}", details={"dataset": dataset, "format": fmt, "filters": filters.as_json(),
                                                        "mode": "direct"})
    metrics.EXPORTS.labels(dataset=dataset, format=fmt, mode="direct").inc()


@transaction.atomic
def export_job_create(*, actor: Actor, dataset: str, fmt: str, filters: ExportFilters) -> ExportJob:
    """Queue an export; the worker starts it once this transaction commits."""
    require_capability(actor, Capability.AUDIT_EXPORT)
    if dataset not in DATASETS or fmt not in ExportFormat.values:
        raise ValueError("dataset and format are validated by the caller")
    job = ExportJob.objects.create(tenant=actor.tenant, requested_by_user=actor.user,
                                   requested_by_label=actor.actor_label, dataset=dataset, format=fmt,
                                   filters=filters.as_json())
    audit_record(tenant_id=actor.tenant.pk, action=AuditAction.EXPORT_REQUESTED, actor=actor, target_type="export_job",
                 target_id=job.pk, details={"dataset": dataset, "format": fmt, "filters": job.filters})
    # Best-effort: if the broker is down the job waits as a queued row for reports.kick_queued_exports.
    transaction.on_commit(lambda: broker_publish_one(EXPORT_TASK, str(job.pk)))
    return job


def export_job_get(*, actor: Actor, job_id: Any) -> ExportJob:
    """The job, if it is this tenant's (another tenant's job is 404, never 403)."""
    require_capability(actor, Capability.AUDIT_EXPORT)
    job = ExportJob.objects.filter(pk=job_id, tenant=actor.tenant).first()
    if job is None:
        raise NotFound("no such export job")
    return job


def export_file_path(job: ExportJob) -> Path:
    return Path(settings.EXPORT_DIR) / str(job.tenant_id) / job.file_name


@transaction.atomic
def export_job_file_open(*, actor: Actor, job_id: Any) -> tuple[ExportJob, Path]:
    """Authorise and audit the download of a finished job's file."""
    job = export_job_get(actor=actor, job_id=job_id)
    if job.status != ExportJob.Status.DONE or not job.file_name:
        raise Conflict(f"the export is {job.status}; download it when it is done", slug="export-not-ready")
    path = export_file_path(job)
    if not path.is_file():
        raise NotFound("the export file has been removed (exports are kept for a limited time)", slug="export-gone")
    audit_record(tenant_id=actor.tenant.pk, action=AuditAction.EXPORT_DOWNLOADED, actor=actor, target_type="export_job",
                 target_id=job.pk, details={"dataset": job.dataset, "format": job.format, "mode": "job"})
    return job, path


def _claim(job_id: Any) -> bool:
    """Move the job to running, unless another worker has it (idempotent under redelivery)."""
    now = timezone.now()
    claimable = Q(status=ExportJob.Status.QUEUED) | Q(status=ExportJob.Status.RUNNING,
                                                      started_at__lt=now - STALE_RUNNING_AFTER)
    return ExportJob.objects.filter(claimable, pk=job_id).update(status=ExportJob.Status.RUNNING, started_at=now,
                                                                 rows_done=0) == 1


def export_job_run(*, job_id: Any) -> ExportJob | None:
    """Run one export job.

    1. Claim it (a conditional update: two workers never both run it).
    2. Count the rows, then write the file to a temporary name, saving progress every chunk.
    3. Rename it into place and mark the job done (or failed, with the error's class).
    """
    if not _claim(job_id):
        return None
    job = ExportJob.objects.select_related("tenant").get(pk=job_id)
    filters = ExportFilters.from_json(job.filters)
    spec = DATASETS[job.dataset]
    ExportJob.objects.filter(pk=job.pk).update(
        rows_total=spec.queryset(job.tenant, filters).count())
    folder = Path(settings.EXPORT_DIR) / str(job.tenant_id)
    folder.mkdir(parents=True, exist_ok=True)
    file_name = f"{job.pk}.{job.format}"
    partial = folder / (file_name + ".part")

    def progress(rows_done: int) -> None:
        ExportJob.objects.filter(pk=job.pk).update(rows_done=rows_done)

    try:
        with partial.open("wb") as out:
            rows = write_export(dataset=job.dataset, fmt=job.format, tenant=job.tenant, filters=filters, out=out,
                                progress=progress)
        partial.replace(folder / file_name)
    except Exception as exc:
        logger.exception("export job %s failed", job.pk)
        partial.unlink(missing_ok=True)
        ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.FAILED, finished_at=timezone.now(),
                                                   error=exc.__class__.__name__)
        job.refresh_from_db()
        return job
    with transaction.atomic():
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.DONE, rows_done=rows, rows_total=rows, file_name=file_name,
            file_size=(folder / file_name).stat().st_size, finished_at=timezone.now())
        audit_record(tenant_id=job.tenant_id, action=AuditAction.EXPORT_COMPLETED,
                     actor=Actor.for_system(job.tenant, "export"), target_type="export_job", target_id=job.pk,
                     details={"dataset": job.dataset, "format": job.format, "rows": rows})
    metrics.EXPORTS.labels(dataset=job.dataset, format=job.format, mode="job").inc()
    job.refresh_from_db()
    return job


def export_jobs_kick_queued(*, now: Any = None, limit: int = 100) -> int:
    """Publish again the run of each job queued for a while (its kick was lost) or running too long (its worker
    died), at most once per KICK_AGAIN_AFTER. A run sent twice is harmless: it claims the job conditionally."""
    now = now or timezone.now()
    stuck = (Q(status=ExportJob.Status.QUEUED, created_at__lt=now - KICK_QUEUED_AFTER)
             | Q(status=ExportJob.Status.RUNNING, started_at__lt=now - STALE_RUNNING_AFTER))
    not_lately = Q(kicked_at__isnull=True) | Q(kicked_at__lt=now - KICK_AGAIN_AFTER)
    ids = list(ExportJob.objects.filter(stuck, not_lately).order_by("created_at").values_list("pk", flat=True)[:limit])
    if not ids or not broker_publish([(EXPORT_TASK, [str(pk)]) for pk in ids]):
        return 0
    ExportJob.objects.filter(pk__in=ids).update(kicked_at=now)
    return len(ids)


def export_jobs_purge(*, now: Any = None) -> int:
    """Delete finished jobs (and their files) older than EXPORT_JOB_RETENTION."""
    cutoff = (now or timezone.now()) - settings.EXPORT_JOB_RETENTION
    purged = 0
    for job in ExportJob.objects.filter(created_at__lt=cutoff).exclude(status=ExportJob.Status.RUNNING).iterator():
        if job.file_name:
            export_file_path(job).unlink(missing_ok=True)
        job.delete()
        purged += 1
    return purged


@transaction.atomic
def escalation_report_record(*, actor: Actor, escalation_id: Any) -> Any:
    """Authorise and audit a regulator's PDF of one escalation; returns the escalation (this tenant's only)."""
    from .selectors import tenant_escalations

    require_capability(actor, Capability.AUDIT_EXPORT)
    escalation = tenant_escalations(actor.tenant).select_related("tenant").filter(pk=escalation_id).first()
    if escalation is None:
        raise NotFound("no such escalation")
    audit_record(tenant_id=actor.tenant.pk, action=AuditAction.ESCALATION_REPORT_GENERATED, actor=actor,
                 target_type="escalation", target_id=escalation.pk, details={"format": "pdf"})
    return escalation
