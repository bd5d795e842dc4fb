"""trustguard.bulk.bulk_insert_columns: rows written column-wise read back as the ORM would have written them."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from notifications.models import Message, OutboxEvent
from trustguard.bulk import bulk_insert_columns

pytestmark = pytest.mark.django_db


def test_rows_given_column_wise_read_back_with_their_defaults_and_their_keys(make_tenant):
    tenant = make_tenant("acme")
    at = timezone.now()

    ids = bulk_insert_columns(OutboxEvent, {
        "aggregate_id": ["a-1", "a-2", "a-3"],
        "data": [{"n": 1}, {"n": "two", "nested": [1, None]}, {}],
    }, constants={"tenant_id": tenant.pk, "type": "thing.happened", "aggregate_type": "thing", "occurred_at": at})

    rows = {e.pk: e for e in OutboxEvent.objects.filter(pk__in=ids)}
    assert [rows[i].aggregate_id for i in ids] == ["a-1", "a-2", "a-3"]  # keys in the order given
    assert rows[ids[1]].data == {"n": "two", "nested": [1, None]}
    assert all(e.version == 1 and e.relayed_at is None and e.occurred_at == at for e in rows.values())
    assert len({e.event_id for e in rows.values()}) == 3  # a callable default (uuid4) is called per row


def test_a_key_the_database_does_not_generate_must_be_given_and_columns_must_agree(make_tenant):
    tenant = make_tenant("acme")

    with pytest.raises(ValueError):
        bulk_insert_columns(Message, {"channel": ["email"]}, constants={"tenant_id": tenant.pk})
    with pytest.raises(ValueError):
        bulk_insert_columns(Message, {"id": [uuid.uuid4()], "channel": ["email", "sms"]})
    assert bulk_insert_columns(Message, {"id": []}) == []
