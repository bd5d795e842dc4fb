"""What operators should look at (the admin's home): cases the sweeps have not moved, stages nobody can decide,
approved cases whose conditions (obligations) are open or overdue."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet

from accounts.models import Tenant
from accounts.selectors import role_has_active_member

from .models import OPEN_STATUSES, Escalation, EscalationStatus
from .obligations import unmet

# The sweeps run every 30-60 s: a deadline passed longer ago than this means they are not running, or failing.
STUCK_AFTER = timedelta(minutes=10)


def stuck_escalations(*, now: datetime) -> QuerySet[Escalation]:
    """Open cases whose next deadline passed more than STUCK_AFTER ago (all tenants: operators' view)."""
    return (Escalation.objects.filter(status__in=OPEN_STATUSES, next_deadline_at__lt=now - STUCK_AFTER)
            .select_related("tenant").order_by("next_deadline_at", "id"))


def unstaffed_stages(*, limit: int = 50) -> list[tuple[Escalation, str]]:
    """Open cases waiting on a role nobody in their tenant holds (a stage nobody can decide): one example each."""
    pairs = (Escalation.objects.filter(status__in=OPEN_STATUSES).order_by()
             .values_list("tenant_id", "assigned_role").distinct())
    tenants = {t.pk: t for t in Tenant.objects.filter(pk__in={tenant_id for tenant_id, _ in pairs})}
    found = []
    for tenant_id, role in sorted(pairs)[:1000]:
        if role_has_active_member(tenant=tenants[tenant_id], role=role):
            continue
        example = (Escalation.objects.filter(tenant_id=tenant_id, assigned_role=role, status__in=OPEN_STATUSES)
                   .select_related("tenant").order_by("next_deadline_at", "id").first())
        if example is not None:
            found.append((example, role))
        if len(found) >= limit:
            break
    return found


def unmet_obligations(*, limit: int = 500) -> list[tuple[Escalation, dict[str, Any]]]:
    """Conditions of approved, not yet executed cases that are open or overdue (the ones that block execution),
    overdue first, then by due date; all tenants (operators' view)."""
    found: list[tuple[Escalation, dict[str, Any]]] = []
    cases = (Escalation.objects.filter(status=EscalationStatus.APPROVED).exclude(conditions=[])
             .select_related("tenant").order_by("conditions_due_at", "id")[:limit])
    for case in cases:
        found.extend((case, condition) for condition in unmet(case))
    return sorted(found, key=lambda pair: (pair[1]["status"] != "overdue", str(pair[1].get("due_at") or "~")))
