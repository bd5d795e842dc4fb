"""The sweeps' batch outbox writer stores each event as event_emit would, in the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from notifications.models import OutboxEvent
from notifications.services import EventSpec, event_emit, event_emit_many

DATA = {"id": "A-1", "when": datetime(2026, 3, 2, 8, 0, 0, 123456, UTC), "amount": None, "roles": ("co", "sm"),
        "nested": {"reason": "expired", "n": 2**40, "ratio": 0.25}}


@pytest.mark.django_db
def test_a_batch_of_events_is_stored_as_event_emit_stores_one(make_tenant):
    tenant = make_tenant("acme")

    with transaction.atomic():
        single = event_emit(tenant_id=tenant.pk, type="escalation.escalated", aggregate_type="escalation",
                            aggregate_id="A-0", data=DATA)
        written = event_emit_many([EventSpec(tenant.pk, "escalation.escalated", "escalation", f"A-{i}", DATA)
                                   for i in range(1, 4)])

    batch = list(OutboxEvent.objects.exclude(pk=single.pk).order_by("id"))
    assert written == len(batch) == 3
    assert [e.aggregate_id for e in batch] == ["A-1", "A-2", "A-3"]
    single.refresh_from_db()
    assert all(e.data == single.data and e.type == single.type and e.version == 1 for e in batch)
    assert all(e.relayed_at is None and e.occurred_at is not None for e in batch)
    assert all(e.event_id.version == 7 for e in batch) and single.event_id.version == 7  # time-ordered ids
    assert len({e.event_id for e in batch}) == 3


@pytest.mark.django_db(transaction=True)
def test_a_batch_outside_a_transaction_is_a_programming_error(make_tenant):
    tenant = make_tenant("acme")

    with pytest.raises(RuntimeError):
        event_emit_many([EventSpec(tenant.pk, "x", "escalation", "A-1", {})])
