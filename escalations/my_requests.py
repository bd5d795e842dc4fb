"""A requester's own cases ("My requests"): what I asked for, as myself or named by a source as `requested_by`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import F, Q, QuerySet

from accounts.actors import Actor

from .models import FINAL_STATUSES, OPEN_STATUSES, Escalation

STATUS_FILTERS = ("open", "closed", "approved", "all")


@dataclass(frozen=True)
class MyRequestFilters:
    status: str = "open"
    type: str = ""
    q: str = ""

    @classmethod
    def from_query(cls, params: Any) -> MyRequestFilters:
        status = params.get("status") or "open"
        return cls(status=status if status in STATUS_FILTERS else "open", type=(params.get("type") or "")[:64],
                   q=(params.get("q") or "").strip()[:200])


def my_requests(*, actor: Actor, filters: MyRequestFilters | None = None) -> QuerySet[Escalation]:
    """The actor's own requests in its tenant, most urgent deadline first (closed ones by when they closed)."""
    filters = filters or MyRequestFilters()
    if actor.user is None:
        return Escalation.objects.none()
    mine = Q(requested_by_user=actor.user)
    if actor.user.email:
        mine |= Q(requested_by_user__isnull=True, requested_by_email__iexact=actor.user.email)
    qs = Escalation.objects.filter(mine, tenant=actor.tenant)
    if filters.status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif filters.status == "closed":
        qs = qs.filter(status__in=FINAL_STATUSES)
    elif filters.status == "approved":
        qs = qs.filter(status="approved")
    if filters.type:
        qs = qs.filter(type=filters.type)
    if filters.q:
        qs = qs.filter(Q(source_entity_id__icontains=filters.q) | Q(reason__icontains=filters.q))
    return (qs.select_related("policy", "requested_by_api_key")
            .order_by(F("next_deadline_at").asc(nulls_last=True), "-created_at", "id"))
