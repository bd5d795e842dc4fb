"""Reading audit events: one tenant's events, filtered, newest first (ordered on created_at, id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, OrderBy, QuerySet

from .models import AuditEvent

# Chain order: sealed events by seq, then those not sealed yet (seq NULL) in the order the sealer will take them.
CHAIN_ORDER: tuple[OrderBy | str, ...] = (F("seq").asc(nulls_last=True), "id")


@dataclass(frozen=True)
class AuditFilter:
    actions: tuple[str, ...] = ()
    actor: str = ""
    actor_type: str = ""
    actor_id: str = ""
    target_type: str = ""
    target_id: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None


def audit_events_for_tenant(*, tenant_id: int, filters: AuditFilter) -> QuerySet[AuditEvent]:
    """The tenant's events matching `filters`, newest first (GET /audit pages them with the one keyset paginator)."""
    qs = AuditEvent.objects.filter(tenant_id=tenant_id)  # never another tenant's chain, nor the platform's
    if filters.actions:
        qs = qs.filter(action__in=filters.actions)
    if filters.actor:
        qs = qs.filter(actor_label=filters.actor)
    if filters.actor_type:
        qs = qs.filter(actor_type=filters.actor_type)
    if filters.actor_id:
        qs = qs.filter(actor_id=filters.actor_id)
    if filters.target_type:
        qs = qs.filter(target_type=filters.target_type)
    if filters.target_id:
        qs = qs.filter(target_id=filters.target_id)
    if filters.created_after:
        qs = qs.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        qs = qs.filter(created_at__lt=filters.created_before)
    return qs.order_by("-created_at", "-id")
