"""Operator pages: the report summary and the health of the pipeline (server-rendered, no JS needed)."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET, require_POST

from accounts.actors import Actor
from accounts.models import Tenant
from accounts.roles import Capability
from accounts.selectors import tenants_of
from accounts.web import tenant_view
from trustguard.errors import DomainError, NotFound
from trustguard.health import health_report

from .exports import CONTENT_TYPES, ExportFilters
from .models import ExportDataset, ExportFormat, ExportJob
from .pdf import escalation_report_pdf
from .selectors import ReportFilters, report_summary
from .services import escalation_report_record, export_job_create, export_job_file_open

RECENT_JOBS = 10


def _day(value: str | None, *, end: bool = False) -> datetime | None:
    day = parse_date(value or "") if value else None
    if day is None:
        return None
    if end:
        day += timedelta(days=1)  # "to 2026-11-30" includes that day
    return timezone.make_aware(datetime.combine(day, time.min))


def _tenants_where(request: HttpRequest, capability: str) -> list[Tenant]:
    tenants = [t for t in tenants_of(user=request.user)  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
               if Actor(tenant=t, user=request.user).can(capability)]  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
    if not tenants:
        raise PermissionDenied(f"this page needs {capability} in a tenant")
    return tenants


def _actor(request: HttpRequest, capability: str, slug: str | None) -> Actor:
    tenants = _tenants_where(request, capability)
    tenant = next((t for t in tenants if t.slug == slug), tenants[0])
    return Actor(tenant=tenant, user=request.user)  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser


@login_required
@require_GET
def reports_page(request: HttpRequest) -> HttpResponse:
    """The summary for one of the person's tenants where they hold audit.view."""
    tenants = _tenants_where(request, Capability.AUDIT_VIEW)
    tenant = next((t for t in tenants if t.slug == request.GET.get("tenant")), tenants[0])
    filters = ReportFilters(period_from=_day(request.GET.get("from")), period_to=_day(request.GET.get("to"), end=True),
                            type=(request.GET.get("type") or "").strip()[:64] or None)
    summary = report_summary(tenant=tenant, filters=filters)
    can_export = Actor(tenant=tenant, user=request.user).can(Capability.AUDIT_EXPORT)  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
    return render(request, "reports/summary.html", {
        "summary": summary, "tenants": tenants, "tenant": tenant, "query": request.GET,
        "by_status": sorted(summary["by_status"].items()), "by_type": sorted(summary["by_type"].items()),
        "can_export": can_export, "datasets": ExportDataset.values, "formats": ExportFormat.values,
        "jobs": list(ExportJob.objects.filter(tenant=tenant)[:RECENT_JOBS]) if can_export else [],
    })


@login_required
@require_POST
def export_start(request: HttpRequest) -> HttpResponse:
    """Start an export job of the page's filters (the same job the API's POST /exports starts)."""
    actor = _actor(request, Capability.AUDIT_EXPORT, request.POST.get("tenant"))
    dataset, fmt = request.POST.get("dataset", ""), request.POST.get("format", "")
    if dataset not in ExportDataset.values or fmt not in ExportFormat.values:
        return HttpResponse("Choose a dataset and a format.", status=400, content_type="text/plain")
    export_job_create(actor=actor, dataset=dataset, fmt=fmt, filters=ExportFilters(
        type=(request.POST.get("type") or "").strip()[:64] or None,
        created_after=_day(request.POST.get("from")), created_before=_day(request.POST.get("to"), end=True)))
    return HttpResponseRedirect(reverse("ops:reports") + f"?tenant={actor.tenant.slug}#exports")


@login_required
@require_GET
def export_file(request: HttpRequest, job_id: str) -> HttpResponseBase:
    """A finished job's file, for a person with audit.export in the job's tenant (else 404)."""
    pk = _uuid(job_id)
    job = ExportJob.objects.filter(pk=pk).select_related("tenant").first() if pk else None
    if job is None:
        return HttpResponse("No such export.", status=404, content_type="text/plain")
    actor = Actor(tenant=job.tenant, user=request.user)  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
    try:
        job, path = export_job_file_open(actor=actor, job_id=job.pk)
    except DomainError as error:
        # Another tenant's job, or one without the right, looks like no job at all.
        status = 404 if error.status == 403 else error.status
        return HttpResponse(error.detail if status != 404 else "No such export.", status=status,
                            content_type="text/plain")
    return FileResponse(path.open("rb"), as_attachment=True, content_type=CONTENT_TYPES[job.format],
                        filename=f"{job.tenant.slug}-{job.dataset}-{job.pk}.{job.format}")


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@staff_member_required
@require_GET
def health_page(request: HttpRequest) -> HttpResponse:
    status, body = health_report()
    return render(request, "reports/health.html", {"status": status, "body": body,
                                                   "checks": sorted(body["checks"].items())}, status=200)


@require_GET
@tenant_view
def escalation_pdf(request: HttpRequest, pk: str) -> HttpResponse:
    """The case page's "Download PDF": the regulator's report, for a person with audit.export (else 404, as
    for another tenant's case). The same service as the API's report.pdf (authorised and audited there)."""
    actor: Actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    escalation_id = _uuid(pk)
    try:
        if escalation_id is None:
            raise NotFound("no such escalation")
        escalation = escalation_report_record(actor=actor, escalation_id=escalation_id)
    except DomainError:
        return HttpResponse("No such escalation.", status=404, content_type="text/plain")
    response = HttpResponse(escalation_report_pdf(escalation=escalation, generated_by=actor.actor_label),
                            content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="escalation-{escalation.pk}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response
