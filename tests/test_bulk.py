"""trustguard.bulk: the batch jobs' plain-row reads and writes give what the ORM would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from accounts.models import Tenant
from audit.models import AuditChainHead
from trustguard.bulk import copy_rows, select_rows, update_rows

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
