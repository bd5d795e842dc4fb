"""Operator pages: the report summary and the health of the pipeline (server-rendered, no JS needed)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET

from accounts.actors import Actor
from accounts.roles import Capability
from accounts.selectors import tenants_of
from trustguard.health import health_report

from .selectors import ReportFilters, report_summary


def _day(value: str | None, *, end: bool = False) -> datetime | None:
    day = parse_date(value or "") if value else None
    if day is None:
        return None
    if end:
        day += timedelta(days=1)  # "to 2026-11-30" includes that day
    return timezone.make_aware(datetime.combine(day, time.min))


@login_required
@require_GET
def reports_page(request: HttpRequest) -> HttpResponse:
    """The summary for one of the person's tenants where they hold audit.view."""
    tenants = [t for t in tenants_of(user=request.user)  # type: ignore[arg-type]
               if Actor(tenant=t, user=request.user).can(Capability.AUDIT_VIEW)]  # type: ignore[arg-type]
    if not tenants:
        raise PermissionDenied("reports need audit.view in a tenant")
    tenant = next((t for t in tenants if t.slug == request.GET.get("tenant")), tenants[0])
    filters = ReportFilters(period_from=_day(request.GET.get("from")), period_to=_day(request.GET.get("to"), end=True),
                            type=(request.GET.get("type") or "").strip()[:64] or None)
    summary = report_summary(tenant=tenant, filters=filters)
    return render(request, "reports/summary.html", {
        "summary": summary, "tenants": tenants, "tenant": tenant, "query": request.GET,
        "by_status": sorted(summary["by_status"].items()), "by_type": sorted(summary["by_type"].items()),
    })


@staff_member_required
@require_GET
def health_page(request: HttpRequest) -> HttpResponse:
    status, body = health_report()
    return render(request, "reports/health.html", {"status": status, "body": body,
                                                   "checks": sorted(body["checks"].items())}, status=200)
