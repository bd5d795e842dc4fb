"""Retention: events go 7 years (the tenant's period) after their case closes, and the chain still verifies."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import ApiKey, Tenant
from audit.actions import AuditAction
from audit.models import AuditCheckpoint, AuditEvent
from audit.retention import retention_apply
from audit.sealing import audit_seal_pending
from audit.services import audit_record, chain_key_for
from audit.verification import verify_chain
from escalations.demo import seed_demo
from escalations.services import SourceRef, escalation_cancel, escalation_create
from trustguard.periodic import job_run

pytestmark = pytest.mark.django_db
YEAR = timedelta(days=365)


def vendor_of(slug: str) -> Actor:
    tenant = Tenant.objects.get(slug=slug)
    return Actor(tenant=tenant, api_key=ApiKey.objects.get(tenant=tenant, name="vendor"))


def open_case(actor: Actor, ref: str):
    return escalation_create(actor=actor, type="SMR", reason="Odd pattern", source=SourceRef("bank", "account", ref))


def events_of(case) -> list[str]:
    return list(AuditEvent.objects.filter(target_type="escalation", target_id=str(case.pk)).values_list("action", flat=True))


def test_retention_removes_only_what_is_past_retention_and_the_chain_still_verifies():
    now = timezone.now()
    with time_machine.travel(now - 8 * YEAR):
        seed_demo("old")
        vendor = vendor_of("old")
        closed_long_ago = open_case(vendor, "A")
        escalation_cancel(actor=vendor, escalation=closed_long_ago)
    with time_machine.travel(now - 8 * YEAR + timedelta(days=1)):
        still_open = open_case(vendor, "B")
    with time_machine.travel(now - 8 * YEAR + timedelta(days=2)):
        closed_after_the_open_one = open_case(vendor, "C")
        escalation_cancel(actor=vendor, escalation=closed_after_the_open_one)
    with time_machine.travel(now - timedelta(days=1)):
        recent = open_case(vendor, "D")
        escalation_cancel(actor=vendor, escalation=recent)
    key = chain_key_for(vendor.tenant.pk)
    audit_seal_pending()
    first_kept = AuditEvent.objects.get(target_id=str(still_open.pk), action="escalation.created")

    [result] = retention_apply(chain_keys=[key], now=now)

    assert events_of(closed_long_ago) == []
    # Everything from the long-open case's first event on stays, old or not: the chain is cut only before it.
    assert events_of(still_open) == ["escalation.created"]
    assert events_of(closed_after_the_open_one) == ["escalation.created", "escalation.cancelled"]
    assert events_of(recent) == ["escalation.created", "escalation.cancelled"]
    assert first_kept.seq is not None
    assert result.pruned == first_kept.seq - 1
    assert AuditEvent.objects.filter(chain_key=key, seq__isnull=False).order_by("seq").first() == first_kept
    checkpoint = AuditCheckpoint.objects.get(chain_key=key)
    assert (checkpoint.seq, checkpoint.hash) == (first_kept.seq - 1, first_kept.prev_hash)
    assert AuditEvent.objects.filter(chain_key=key, action="audit.pruned").exists()
    assert verify_chain(key).ok, verify_chain(key).describe()


def test_a_case_is_kept_for_the_whole_period_after_it_closes_and_then_pruned():
    now = timezone.now()
    with time_machine.travel(now - 8 * YEAR):
        seed_demo("old")
        vendor = vendor_of("old")
        case = open_case(vendor, "B")
    escalation_cancel(actor=vendor, escalation=case)  # closes today, after 8 years open
    key = chain_key_for(vendor.tenant.pk)

    retention_apply(chain_keys=[key], now=now)  # what came before the case (the seeding) goes
    assert events_of(case) == ["escalation.created", "escalation.cancelled"]
    assert retention_apply(chain_keys=[key], now=now + 7 * YEAR)[0].pruned == 0  # 7 years, not yet 7*365+2 days
    assert events_of(case) == ["escalation.created", "escalation.cancelled"]

    later = retention_apply(chain_keys=[key], now=now + 7 * YEAR + timedelta(days=3))

    assert later[0].pruned > 0
    assert events_of(case) == []
    assert verify_chain(key).ok


def test_a_tenant_may_configure_a_shorter_period_and_nothing_younger_is_removed():
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=40)):
        seed_demo("brief")
        vendor = vendor_of("brief")
        old = open_case(vendor, "OLD")
        escalation_cancel(actor=vendor, escalation=old)
    with time_machine.travel(now - timedelta(days=20)):
        young = open_case(vendor, "YOUNG")
        escalation_cancel(actor=vendor, escalation=young)
    Tenant.objects.filter(slug="brief").update(audit_retention_days=30)
    key = chain_key_for(vendor.tenant.pk)

    retention_apply(chain_keys=[key], now=now)

    assert events_of(old) == []
    assert events_of(young) == ["escalation.created", "escalation.cancelled"]
    assert not AuditEvent.objects.filter(chain_key=key, created_at__gte=now - timedelta(days=30),
                                         action="escalation.created").exclude(target_id=str(young.pk)).exists()
    assert verify_chain(key).ok


def test_pruning_twice_moves_the_checkpoint_forward_and_verify_audit_still_passes():
    now = timezone.now()
    with time_machine.travel(now - 10 * YEAR):
        seed_demo("old")
        vendor = vendor_of("old")
        first = open_case(vendor, "1")
        escalation_cancel(actor=vendor, escalation=first)
    with time_machine.travel(now - 9 * YEAR):
        second = open_case(vendor, "2")
        escalation_cancel(actor=vendor, escalation=second)
    key = chain_key_for(vendor.tenant.pk)

    retention_apply(chain_keys=[key], now=now - 2 * YEAR)  # only the first case is past retention then
    assert events_of(first) == [] and events_of(second) != []
    summary = job_run("audit.apply_retention")  # the nightly job, at the real now

    assert summary.startswith("pruned ")
    assert events_of(second) == []
    assert AuditCheckpoint.objects.filter(chain_key=key).count() == 2
    assert verify_chain(key).ok
    assert job_run("audit.verify_chains").startswith("OK ")


@pytest.mark.postgres
def test_a_broken_prefix_is_never_pruned(caplog):
    now = timezone.now()
    with time_machine.travel(now - 9 * YEAR):
        seed_demo("old")
        vendor = vendor_of("old")
        case = open_case(vendor, "A")
        escalation_cancel(actor=vendor, escalation=case)
    key = chain_key_for(vendor.tenant.pk)
    audit_seal_pending()  # a sealed event altered (an unsealed one would stop the sealer instead: test_tamper)
    victim = AuditEvent.objects.get(target_id=str(case.pk), action="escalation.cancelled")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE audit_auditevent SET details = '{}' WHERE id = %s", [victim.pk])
    count = AuditEvent.objects.filter(chain_key=key).count()

    with caplog.at_level(logging.ERROR):
        [result] = retention_apply(chain_keys=[key], now=now)

    assert result.pruned == 0
    assert f"event id={victim.pk}" in result.refused
    assert AuditEvent.objects.filter(chain_key=key).count() == count  # the evidence is kept
    assert any("refused to prune" in r.getMessage() for r in caplog.records)


def test_the_platform_chain_is_kept_for_the_default_period():
    now = timezone.now()
    with time_machine.travel(now - 8 * YEAR), transaction.atomic():
        from audit.services import SystemActor

        old = audit_record(tenant_id=None, action=AuditAction.NOTIFICATIONS_PURGED, actor=SystemActor("test"))
    with transaction.atomic():
        young = audit_record(tenant_id=None, action=AuditAction.NOTIFICATIONS_PURGED, actor=SystemActor("test"))

    retention_apply(chain_keys=[old.chain_key], now=now)

    assert not AuditEvent.objects.filter(pk=old.pk).exists()
    assert AuditEvent.objects.filter(pk=young.pk).exists()
    assert verify_chain(old.chain_key).ok
