"""The summary's change-management figures: cost (estimated, actual, variance) and obligations.

Computed in the database per currency (amounts of different currencies are never added up); variance is
actual - estimated over the cases that have both in one currency, by type and by requester.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum

from escalations.models import Escalation

OBLIGATION_STATUSES = ("open", "overdue", "met", "waived")


def _same_currency(qs: QuerySet[Escalation]) -> QuerySet[Escalation]:
    return qs.filter(estimated_cost_minor__isnull=False, actual_cost_minor__isnull=False,
                     actual_cost_currency=F("estimated_cost_currency"))


def _variance_rows(qs: QuerySet[Escalation], *group: str) -> list[dict[str, Any]]:
    rows = (_same_currency(qs).values(*group, "estimated_cost_currency")
            .annotate(cases=Count("pk"), estimated=Sum("estimated_cost_minor"), actual=Sum("actual_cost_minor"))
            .order_by(*group, "estimated_cost_currency"))
    return [{**{g: r[g] for g in group}, "currency": r["estimated_cost_currency"], "cases": r["cases"],
             "estimated_minor": r["estimated"], "actual_minor": r["actual"],
             "variance_minor": r["actual"] - r["estimated"]} for r in rows]


def cost_summary(cohort: QuerySet[Escalation]) -> dict[str, Any]:
    """{totals: [per currency], variance_by_type: [...], variance_by_requester: [...]}."""
    estimated: dict[str, Any] = {r["estimated_cost_currency"]: r for r in cohort.filter(estimated_cost_minor__isnull=False)
                 .values("estimated_cost_currency").annotate(cases=Count("pk"), total=Sum("estimated_cost_minor"))
                 .order_by()}
    actual: dict[str, Any] = {r["actual_cost_currency"]: r for r in cohort.filter(actual_cost_minor__isnull=False)
              .values("actual_cost_currency").annotate(cases=Count("pk"), total=Sum("actual_cost_minor")).order_by()}
    compared: dict[str, dict[str, Any]] = {r["currency"]: r for r in _variance_rows(cohort)}
    totals = [{"currency": c,
               "estimated_cases": estimated.get(c, {}).get("cases", 0),
               "estimated_minor": estimated.get(c, {}).get("total") or 0,
               "actual_cases": actual.get(c, {}).get("cases", 0),
               "actual_minor": actual.get(c, {}).get("total") or 0,
               "compared_cases": compared.get(c, {}).get("cases", 0),
               "variance_minor": compared.get(c, {}).get("variance_minor", 0)}
              for c in sorted({*estimated, *actual})]
    by_requester = []
    for r in _variance_rows(cohort, "requested_by_user__username", "requested_by_api_key__name"):
        user, key = r.pop("requested_by_user__username"), r.pop("requested_by_api_key__name")
        by_requester.append({"requester": user or (f"api_key:{key}" if key else ""), **r})
    return {"totals": totals, "variance_by_type": _variance_rows(cohort, "type"),
            "variance_by_requester": by_requester}


def obligation_summary(cohort: QuerySet[Escalation]) -> dict[str, int]:
    """How many conditions are open, overdue, met, waived (a condition is one obligation)."""
    counts: Counter[str] = Counter()
    for conditions in (cohort.filter(~Q(conditions=[])).values_list("conditions", flat=True).iterator()):
        for c in conditions or []:
            counts[c.get("status", "open") if isinstance(c, dict) else "open"] += 1
    return {status: counts.get(status, 0) for status in OBLIGATION_STATUSES}
