"""Many approvers deciding at once never over-count and never lose a decision (real threads, PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, transaction

from accounts.actors import Actor
from accounts.services import api_key_create
from approvals.models import Decision
from escalations.models import EscalationStatus
from escalations.policies import policy_upsert
from escalations.services import SourceRef, escalation_create, escalation_decide, lock_escalation
from tests.conftest import totp_code
from tests.locking import held_elsewhere
from trustguard.errors import DomainError

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_at_once(jobs):
    """Start every job at the same instant; return each one's result or exception, in order."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def worker(i, job):
        try:
            barrier.wait()
            results[i] = job()
        except Exception as exc:  # collected and asserted on below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def setup_change(make_tenant, make_person, quorum: int, people: int):
    tenant = make_tenant()
    system = Actor.for_system(tenant, "test")
    # A policy may not ask for more approvals than people hold the role (400): hire them all, let `people` act.
    managers = [make_person(tenant, "senior_manager", f"sm{i}") for i in range(max(people, quorum))][:people]
    policy_upsert(tenant=tenant, type="BIG_CHANGE", fields={"route": [{"roles": ["senior_manager"],
                                                                     "approvals_required": quorum}]}, actor=system)
    key, _ = api_key_create(tenant=tenant, name="change-tool", actor=system)
    escalation = escalation_create(actor=Actor(tenant=tenant, api_key=key), type="BIG_CHANGE", reason="Migrate",
                                   source=SourceRef("change-tool", "change", "CHG-1"))
    return tenant, managers, escalation


def approve(tenant, person, escalation, code):
    return lambda: escalation_decide(actor=Actor(tenant=tenant, user=person), escalation=escalation.pk,
                                     decision="approve", justification="Reviewed the plan", otp=code)


def test_twenty_five_approvers_at_once_on_a_quorum_of_twenty_approve_exactly_twenty(make_tenant, make_person):
    tenant, managers, escalation = setup_change(make_tenant, make_person, quorum=20, people=25)
    jobs = [approve(tenant, m, escalation, totp_code(m)) for m in managers]

    results = run_at_once(jobs)

    errors = [r for r in results if isinstance(r, Exception)]
    domain_errors = [e for e in errors if isinstance(e, DomainError)]
    assert domain_errors == errors, errors
    assert Counter(e.status for e in domain_errors) == {409: 5}
    escalation.refresh_from_db()
    assert escalation.status == EscalationStatus.APPROVED
    assert escalation.approvals_received == 20
    assert Decision.objects.filter(request=escalation.approval).count() == 20


def test_twenty_approvers_at_once_below_quorum_lose_no_decision(make_tenant, make_person):
    tenant, managers, escalation = setup_change(make_tenant, make_person, quorum=30, people=20)
    jobs = [approve(tenant, m, escalation, totp_code(m)) for m in managers]

    results = run_at_once(jobs)

    assert not [r for r in results if isinstance(r, Exception)]
    escalation.refresh_from_db()
    assert escalation.status == EscalationStatus.PENDING
    assert escalation.approvals_received == 20
    assert set(Decision.objects.values_list("decided_by", flat=True)) == {m.pk for m in managers}


def test_one_person_approving_twenty_times_at_once_counts_once(make_tenant, make_person):
    tenant, managers, escalation = setup_change(make_tenant, make_person, quorum=2, people=1)
    code = totp_code(managers[0])

    results = run_at_once([approve(tenant, managers[0], escalation, code) for _ in range(20)])

    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 19
    assert all(isinstance(e, DomainError) and e.status in (403, 409) for e in errors), errors
    escalation.refresh_from_db()
    assert escalation.approvals_received == 1
    assert Decision.objects.count() == 1


def test_an_escalation_locked_by_one_action_does_not_hold_up_another_of_the_same_tenant(make_tenant, make_person):
    tenant, _, first = setup_change(make_tenant, make_person, quorum=1, people=1)
    key, _ = api_key_create(tenant=tenant, name="second-tool", actor=Actor.for_system(tenant, "test"))
    second = escalation_create(actor=Actor(tenant=tenant, api_key=key), type="BIG_CHANGE", reason="Resize",
                               source=SourceRef("second-tool", "change", "CHG-2"))
    with held_elsewhere(lambda: lock_escalation(first), wait=60), transaction.atomic():
        # A lock on the tenant's row (a bare FOR UPDATE over the join) would make this wait, then fail.
        connection.cursor().execute("SET LOCAL lock_timeout = '5s'")
        assert lock_escalation(second).pk == second.pk
