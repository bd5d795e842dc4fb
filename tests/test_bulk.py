"""trustguard.bulk: the batch jobs' plain-row reads and writes give what the ORM would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from audit.models import AuditChainHead
from notifications.models import Message, OutboxEvent
from trustguard.bulk import bulk_insert_columns, copy_rows, select_rows, update_rows

pytestmark = pytest.mark.django_db


def test_update_rows_sets_the_given_fields_by_primary_key_in_batches_and_leaves_the_rest(make_tenant):
    tenants = [make_tenant(f"t{i}") for i in range(5)]
    untouched = make_tenant("untouched")

    updated = update_rows(Tenant, ["name", "audit_retention_days"],
                          [(t.pk, f"Renamed {i}", 30 + i) for i, t in enumerate(tenants)], batch_size=2)

    assert updated == 5
    assert [(t.name, t.audit_retention_days, t.slug) for t in Tenant.objects.filter(pk__in=[t.pk for t in tenants])
            .order_by("slug")] == [(f"Renamed {i}", 30 + i, f"t{i}") for i in range(5)]
    assert Tenant.objects.get(pk=untouched.pk).name == untouched.name


def test_copy_rows_inserts_rows_with_the_values_given():
    with transaction.atomic():
        copy_rows(AuditChainHead, ["chain_key", "last_seq", "last_hash"], [("bulk:1", 3, "ab"), ("bulk:2", 0, "")])

    assert list(AuditChainHead.objects.filter(chain_key__startswith="bulk:").order_by("chain_key")
                .values_list("chain_key", "last_seq", "last_hash")) == [("bulk:1", 3, "ab"), ("bulk:2", 0, "")]


def test_select_rows_reads_what_values_list_reads(make_tenant):
    make_tenant("acme")
    Tenant.objects.filter(slug="acme").update(created_at=datetime(2026, 3, 2, 8, 0, 0, 123456, UTC))
    queryset = Tenant.objects.filter(slug="acme").values_list("pk", "slug", "created_at", "single_employee_mode")

    [row] = select_rows(queryset)

    assert row == next(iter(queryset))
    assert row[2].tzinfo is UTC and row[2] == datetime(2026, 3, 2, 8, 0, 0, 123456, UTC)


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
