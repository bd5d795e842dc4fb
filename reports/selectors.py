"""Operator reports: one function, `report_summary`, computed in the database.

Every figure is about a cohort: the tenant's escalations created in [from, to) (and of one type,
when asked). The backlog ("bottlenecks") is the exception: it is the open work right now, because
that is what an operator acts on. Both the API and the operator page call `report_summary`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, DateTimeField, F, Min, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Tenant
from approvals.models import Decision
from escalations.metrics import human_decision_exists, sla_breaches_by_role_and_level, time_to_acknowledge, time_to_decision
from escalations.models import OPEN_STATUSES, Escalation, EscalationStatus

from .change_costs import cost_summary, obligation_summary

APPROVED_STATUSES = (EscalationStatus.APPROVED, EscalationStatus.EXECUTED)
BOTTLENECK_COUNT = 3


@dataclass(frozen=True)
class ReportFilters:
    period_from: datetime | None = None
    period_to: datetime | None = None
    type: str | None = None


REPORTS_JOB = "reports"


def tenant_escalations(tenant: Tenant) -> QuerySet[Escalation]:
    """Every case of the tenant, as reports, exports and a case's PDF read them (their callers hold audit.view or
    audit.export): Escalation.objects.visible_to the tenant's own reporting job."""
    return Escalation.objects.visible_to(Actor.for_system(tenant, REPORTS_JOB))


def escalation_cohort(*, tenant: Tenant, filters: ReportFilters) -> QuerySet[Escalation]:
    qs = tenant_escalations(tenant)
    if filters.period_from is not None:
        qs = qs.filter(created_at__gte=filters.period_from)
    if filters.period_to is not None:
        qs = qs.filter(created_at__lt=filters.period_to)
    if filters.type:
        qs = qs.filter(type=filters.type)
    return qs


def _backlog_by_role(tenant: Tenant, filters: ReportFilters, now: datetime) -> list[dict[str, Any]]:
    open_qs = tenant_escalations(tenant).filter(status__in=OPEN_STATUSES)
    if filters.type:
        open_qs = open_qs.filter(type=filters.type)
    rows = (open_qs.values("assigned_role")
            .annotate(open=Count("pk"), oldest_created_at=Min("created_at"),
                      overdue=Count("pk", filter=Q(next_deadline_at__lt=now)))
            .order_by("oldest_created_at", "assigned_role"))
    return [{"role": r["assigned_role"], "open": r["open"], "overdue": r["overdue"],
             "oldest_open_created_at": r["oldest_created_at"],
             "oldest_open_age_seconds": int((now - r["oldest_created_at"]).total_seconds())} for r in rows]


def report_summary(*, tenant: Tenant, filters: ReportFilters | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Counts, rates, timings, SLA figures and the backlog of one tenant, as one JSON-ready dict."""
    filters = filters or ReportFilters()
    now = now or timezone.now()
    cohort = escalation_cohort(tenant=tenant, filters=filters)

    by_status = {s: 0 for s in EscalationStatus.values}
    by_status.update({r["status"]: r["n"] for r in cohort.values("status").annotate(n=Count("pk")).order_by()})
    by_type = {r["type"]: r["n"] for r in cohort.values("type").annotate(n=Count("pk")).order_by("type")}

    # The acknowledgement deadline was missed when the first response (acknowledgement, else the
    # close) came after it, or when nothing has come and it is already past.
    outcomes = cohort.annotate(
        _decided=human_decision_exists(),
        _responded=Coalesce(F("acknowledged_at"), F("closed_at"), Value(now, output_field=DateTimeField())),
    ).aggregate(
        total=Count("pk"),
        open=Count("pk", filter=Q(status__in=OPEN_STATUSES)),
        approved=Count("pk", filter=Q(status__in=APPROVED_STATUSES, _decided=True)),
        auto_approved=Count("pk", filter=Q(status__in=APPROVED_STATUSES, _decided=False)),
        rejected=Count("pk", filter=Q(status=EscalationStatus.REJECTED, _decided=True)),
        # A policy may turn expiry into a rejection (high-risk sanctions matches): nobody decided it.
        rejected_on_expiry=Count("pk", filter=Q(status=EscalationStatus.REJECTED, _decided=False)),
        expired=Count("pk", filter=Q(status=EscalationStatus.EXPIRED)),
        cancelled=Count("pk", filter=Q(status=EscalationStatus.CANCELLED)),
        executed=Count("pk", filter=Q(status=EscalationStatus.EXECUTED)),
        ack_deadline_missed=Count("pk", filter=Q(ack_due_at__isnull=False, _responded__gt=F("ack_due_at"))),
    )
    decided = outcomes["approved"] + outcomes["rejected"]

    # The definitions of these (escalations.metrics) are the dashboard summary's too.
    time_to_ack = time_to_acknowledge(cohort, tenant_id=tenant.pk)
    time_to_decide = time_to_decision(cohort)
    sla_rows = sla_breaches_by_role_and_level(cohort, tenant_id=tenant.pk)
    decisions_by_role: dict[str, dict[str, int]] = {}
    for r in (Decision.objects.filter(request__escalation__in=cohort).values("role", "decision")
              .annotate(n=Count("pk")).order_by("role", "decision")):
        decisions_by_role.setdefault(r["role"], {k: 0 for k in Decision.Kind.values})[r["decision"]] = r["n"]
    backlog = _backlog_by_role(tenant, filters, now)

    roles = sorted({*decisions_by_role, *(r["role"] for r in sla_rows if r["role"]), *(b["role"] for b in backlog)})
    backlog_of = {b["role"]: b for b in backlog}
    by_role = [{
        "role": role,
        "decisions": decisions_by_role.get(role, {k: 0 for k in Decision.Kind.values}),
        "sla_breaches": sum(r["sla_breaches"] for r in sla_rows if r["role"] == role),
        "re_escalations": sum(r["re_escalations"] for r in sla_rows if r["role"] == role),
        "open": backlog_of.get(role, {}).get("open", 0),
        "oldest_open_age_seconds": backlog_of.get(role, {}).get("oldest_open_age_seconds"),
    } for role in roles]

    return {
        "tenant": tenant.slug,
        "generated_at": now,
        "filters": {"from": filters.period_from, "to": filters.period_to, "type": filters.type},
        "totals": {"escalations": outcomes["total"], "open": outcomes["open"],
                   "final": outcomes["total"] - outcomes["open"]},
        "by_status": by_status,
        "by_type": by_type,
        "outcomes": {
            "approved": outcomes["approved"], "auto_approved": outcomes["auto_approved"],
            "rejected": outcomes["rejected"], "rejected_on_expiry": outcomes["rejected_on_expiry"],
            "expired": outcomes["expired"], "cancelled": outcomes["cancelled"],
            "executed": outcomes["executed"],
            # Of the requests people decided (approved or rejected), the share approved.
            "approval_rate": round(outcomes["approved"] / decided, 4) if decided else None,
        },
        "time_to_acknowledge": time_to_ack,
        "time_to_decision": time_to_decide,
        "sla": {
            # From the deadline columns: first response (ack, else close) after ack_due_at, or none yet and past it.
            "ack_deadline_missed": outcomes["ack_deadline_missed"],
            # From the sweep's audit events: every missed deadline, the moves up, the alerts at the top
            # (escalations.metrics.sla_breaches, the dashboard summary's figure, is this sum).
            "sla_breaches": sum(r["sla_breaches"] for r in sla_rows),
            "re_escalations": sum(r["re_escalations"] for r in sla_rows),
            "top_level_alerts": sum(r["top_level_alerts"] for r in sla_rows),
            "by_role_and_level": sla_rows,
        },
        "by_role": by_role,
        "bottlenecks": backlog[:BOTTLENECK_COUNT],
        "costs": cost_summary(cohort),
        "obligations": obligation_summary(cohort),
    }
