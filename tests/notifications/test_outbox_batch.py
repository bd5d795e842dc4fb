"""The one outbox writer stores one event or a batch alike, in the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from notifications.models import OutboxEvent
from notifications.outbox.catalogue import Event
from notifications.outbox.emit import event_emit

DATA = {"id": "A-1", "when": datetime(2026, 3, 2, 8, 0, 0, 123456, UTC), "amount": None, "roles": ("co", "sm"),
        "nested": {"reason": "expired", "n": 2**40, "ratio": 0.25}}


@pytest.mark.django_db
def test_a_batch_of_events_is_stored_as_one_event_is(make_tenant):
    tenant = make_tenant("acme")

    with transaction.atomic():
        (single_id,) = event_emit(Event(tenant.pk, "escalation.escalated", "escalation", "A-0", DATA))
        written = event_emit([Event(tenant.pk, "escalation.escalated", "escalation", f"A-{i}", DATA)
                              for i in range(1, 4)])

    single = OutboxEvent.objects.get(event_id=single_id)
    batch = list(OutboxEvent.objects.exclude(pk=single.pk).order_by("id"))
    assert len(written) == len(batch) == 3
    assert [e.event_id for e in batch] == written  # the ids returned, in the order given
    assert [e.aggregate_id for e in batch] == ["A-1", "A-2", "A-3"]
    assert single.data == {"id": "A-1", "when": "2026-03-02T08:00:00.123Z", "amount": None, "roles": ["co", "sm"],
                           "nested": {"reason": "expired", "n": 2**40, "ratio": 0.25}}  # as DjangoJSONEncoder says
    assert all(e.data == single.data and e.type == single.type and e.version == 1 for e in batch)
    assert all(e.relayed_at is None and e.occurred_at is not None for e in [single, *batch])
    assert all(e.event_id.version == 7 for e in batch) and single.event_id.version == 7  # time-ordered ids
    assert len({e.event_id for e in batch}) == 3


@pytest.mark.django_db
def test_an_empty_batch_writes_nothing(make_tenant):
    with transaction.atomic():
        assert event_emit([]) == []
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_batch_outside_a_transaction_is_a_programming_error(make_tenant):
    tenant = make_tenant("acme")

    with pytest.raises(RuntimeError):
        event_emit([Event(tenant.pk, "x", "escalation", "A-1", {})])
    with pytest.raises(RuntimeError):
        event_emit(Event(tenant.pk, "x", "escalation", "A-1", {}))
    assert not OutboxEvent.objects.exists()
