"""Two sweeps at once (two beats, or beat plus run_sweeps) act once per escalation: real threads on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from django.utils import timezone

from audit.models import AuditEvent
from audit.sealing import audit_seal_pending
from audit.services import chain_key_for
from audit.verification import verify_chain
from escalations.models import Escalation
from escalations.services import SourceRef, escalation_create
from escalations.sweeps import SweepResult, sweep_deadlines
from notifications.models import OutboxEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CASES = 60


def run_together(work, n: int = 2) -> list:
    """Start `n` threads at the same instant (a barrier); each uses its own database connection."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def overdue_cases(vendor, *, ack_overdue: bool = True, expired: bool = False) -> list[str]:
    ids = []
    for i in range(CASES):
        case = escalation_create(actor=vendor, type="SMR", reason="Unusual deposits",
                                 source=SourceRef("core-banking", "customer", f"CUST-{i}"))
        ids.append(str(case.pk))
    past = timezone.now() - timedelta(minutes=1)
    updates = {"ack_due_at": past} if ack_overdue else {}
    if expired:
        updates["expires_at"] = past
    Escalation.objects.filter(pk__in=ids).update(**updates)
    return ids


def test_two_sweeps_started_together_re_escalate_each_overdue_case_exactly_once(vendor):
    ids = overdue_cases(vendor)

    results: list[SweepResult] = run_together(lambda: sweep_deadlines(chunk_size=7))

    assert sum(r.escalated for r in results) == CASES
    assert set(Escalation.objects.filter(pk__in=ids).values_list("escalation_level", "assigned_role")) == {
        (1, "senior_manager")}
    per_case = Counter(OutboxEvent.objects.filter(type="escalation.escalated").values_list("aggregate_id", flat=True))
    assert per_case == dict.fromkeys(ids, 1)
    audited = Counter(AuditEvent.objects.filter(action="escalation.escalated").values_list("target_id", flat=True))
    assert audited == dict.fromkeys(ids, 1)
    audit_seal_pending()
    seqs = list(AuditEvent.objects.filter(tenant=vendor.tenant).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))  # one unbroken chain, however the two sweeps interleaved


def test_two_sweeps_started_together_expire_each_case_exactly_once(vendor):
    ids = overdue_cases(vendor, ack_overdue=False, expired=True)

    results: list[SweepResult] = run_together(lambda: sweep_deadlines(chunk_size=7))

    assert sum(r.expired for r in results) == CASES
    assert set(Escalation.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"expired"}
    per_case = Counter(OutboxEvent.objects.filter(type="escalation.expired").values_list("aggregate_id", flat=True))
    assert per_case == dict.fromkeys(ids, 1)


def test_one_sweep_with_two_chunks_in_flight_acts_once_per_case_on_one_unbroken_chain(vendor):
    ids = overdue_cases(vendor)
    helpers: list[str] = []

    def opened(sender, connection, **kwargs) -> None:
        helpers.append(threading.current_thread().name)

    connection_created.connect(opened)
    try:
        result = sweep_deadlines(chunk_size=7)  # 60 cases: full chunks, so a second worker takes every other one
    finally:
        connection_created.disconnect(opened)

    assert "sweep-pipeline" in helpers  # the helper worker ran, on a connection of its own
    assert result.escalated == CASES
    per_case = Counter(OutboxEvent.objects.filter(type="escalation.escalated").values_list("aggregate_id", flat=True))
    assert per_case == dict.fromkeys(ids, 1)
    audit_seal_pending()
    audited = list(AuditEvent.objects.filter(tenant=vendor.tenant).order_by("seq"))
    assert [e.seq for e in audited] == list(range(1, len(audited) + 1))
    assert verify_chain(chain_key_for(vendor.tenant.pk)).ok
