"""The figures about a set of cases (a cohort), defined once for the dashboard summary and the operator report.

- An SLA breach is a missed acknowledgement deadline, as the sweep records it (docs/OBSERVABILITY.md,
  trustguard_sla_breaches_total): each `escalation.escalated` (the case moved one step up the ladder) and each
  `escalation.sla_breached` (it was already at the top: one alert per breach). Both audit events carry the state
  that missed the deadline in `before`.
- Time to decision is from creation to the final decision of the requests people decided (approved or
  rejected by a person): an auto-approval (decided at creation) or a rejection on expiry would flatter it.
- Percentiles (the median, p90) interpolate linearly, as PostgreSQL's percentile_cont; computed in the database.
"""

from __future__ import annotations

import math
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, Expression, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce

from approvals.models import Decision
from audit.actions import AuditAction
from audit.models import AuditEvent
from trustguard.dbfuncs import PercentileCont, Seconds, UuidText

from .models import Escalation

ACTION_ACKNOWLEDGED = AuditAction.ESCALATION_ACKNOWLEDGED
ACTION_ESCALATED = AuditAction.ESCALATION_ESCALATED
ACTION_SLA_BREACHED = AuditAction.ESCALATION_SLA_BREACHED
PERCENTILES = {"median_seconds": 0.5, "p90_seconds": 0.9}


def percentiles(qs: QuerySet[Any], expression: Expression) -> dict[str, float | None]:
    """Median and p90 of `expression` over `qs` (NULLs ignored), with the row count.

    PostgreSQL: percentile_cont in one aggregate. Elsewhere: the same linear interpolation,
    still in the database: count, then fetch only the one or two rows around each rank.
    """
    values = qs.annotate(_v=expression).filter(_v__isnull=False)
    if connection.vendor == "postgresql":
        result: dict[str, Any] = values.aggregate(count=Count("pk"), **{
            name: PercentileCont("_v", p) for name, p in PERCENTILES.items()})
    else:
        count = values.count()
        result = {"count": count}
        ordered = values.order_by("_v").values_list("_v", flat=True)
        for name, p in PERCENTILES.items():
            if count == 0:
                result[name] = None
                continue
            rank = (count - 1) * p
            lo, hi = math.floor(rank), math.ceil(rank)
            around = list(ordered[lo:hi + 1])
            low, high = around[0], around[-1]
            result[name] = low + (high - low) * (rank - lo)
    for name in PERCENTILES:
        if result[name] is not None:
            result[name] = round(float(result[name]), 3)
    return result


def human_decision_exists() -> Exists:
    """A person approved or rejected it (not an auto-approval at creation, not the expiry sweep)."""
    return Exists(Decision.objects.filter(request_id=OuterRef("approval_id"),
                                          decision__in=[Decision.Kind.APPROVE, Decision.Kind.REJECT]))


def time_to_decision(cohort: QuerySet[Escalation]) -> dict[str, float | None]:
    """Count, median and p90 of the seconds from creation to the decision of the cases people decided."""
    return percentiles(cohort.filter(human_decision_exists(), decided_at__isnull=False),
                       Seconds(F("decided_at"), F("created_at")))


def time_to_acknowledge(cohort: QuerySet[Escalation], *, tenant_id: int) -> dict[str, float | None]:
    """Count, median and p90 of the seconds from creation to the first acknowledgement (the audit trail
    keeps it across the later stages' resets)."""
    first = Subquery(AuditEvent.objects.filter(
        tenant_id=tenant_id, target_type="escalation", action=ACTION_ACKNOWLEDGED, target_id=UuidText(OuterRef("pk")),
    ).order_by("created_at").values("created_at")[:1])
    return percentiles(cohort, Seconds(first, F("created_at")))


def _breaches(cohort: QuerySet[Escalation], tenant_id: int) -> QuerySet[AuditEvent]:
    """The audit events of the cohort's missed acknowledgement deadlines."""
    return AuditEvent.objects.filter(tenant_id=tenant_id, target_type="escalation",
                                     action__in=[ACTION_ESCALATED, ACTION_SLA_BREACHED],
                                     target_id__in=cohort.annotate(_t=UuidText("pk")).values("_t"))


def sla_breaches_by_role_and_level(cohort: QuerySet[Escalation], *, tenant_id: int) -> list[dict[str, Any]]:
    """The cohort's SLA breaches (and of them, the moves up and the alerts at the top), by the role and level
    that missed the deadline."""
    rows = (
        _breaches(cohort, tenant_id)
        # `before` is the state that missed the deadline; an alert-only event may carry only `after`.
        .annotate(role=Coalesce(KT("before__assigned_role"), KT("after__assigned_role")),
                  level=Coalesce(KT("before__escalation_level"), KT("after__escalation_level")))
        .values("role", "level")
        .annotate(sla_breaches=Count("pk"),
                  re_escalations=Count("pk", filter=Q(action=ACTION_ESCALATED)),
                  top_level_alerts=Count("pk", filter=Q(action=ACTION_SLA_BREACHED)))
        .order_by("role", "level")
    )
    return [{"role": r["role"] or "", "level": int(r["level"]) if r["level"] not in (None, "") else None,
             "sla_breaches": r["sla_breaches"], "re_escalations": r["re_escalations"],
             "top_level_alerts": r["top_level_alerts"]} for r in rows]


def sla_breaches(cohort: QuerySet[Escalation], *, tenant_id: int) -> int:
    """How many SLA breaches the cohort's cases had (every missed acknowledgement deadline)."""
    return _breaches(cohort, tenant_id).count()
