"""The hold escalations put on audit retention: a case's events are kept for the period after it closes."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Min, Q

from .models import Escalation


def open_cases_hold(tenant_id: int, cutoff: datetime) -> datetime | None:
    """When the oldest escalation still under retention (open, or closed after `cutoff`) was created.

    Every event about an escalation is written at or after its creation, so keeping the chain
    from that instant on keeps all of them (and whatever interleaves with them).
    """
    held = Escalation.objects.filter(tenant_id=tenant_id).filter(Q(closed_at__isnull=True) | Q(closed_at__gte=cutoff))
    oldest: datetime | None = held.aggregate(oldest=Min("created_at"))["oldest"]
    return oldest
