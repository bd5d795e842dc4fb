"""The delegator and the delegate approving the same case at the same instant count once (real threads, PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.actors import Actor
from accounts.delegations import DelegationInput, delegation_create
from accounts.services import api_key_create
from approvals.models import Decision
from escalations.models import EscalationStatus
from escalations.policies import policy_upsert
from escalations.services import SourceRef, escalation_create, escalation_decide
from tests.approvals.test_concurrency import run_at_once
from tests.conftest import totp_code
from trustguard.errors import DomainError

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("attempt", range(3))
def test_delegator_and_delegate_approving_at_the_same_instant_count_once(make_tenant, make_person, attempt):
    tenant = make_tenant(f"pair{attempt}")
    system = Actor.for_system(tenant, "test")
    manager, other_manager = make_person(tenant, "senior_manager", f"sm{attempt}"), make_person(
        tenant, "senior_manager", f"smb{attempt}")
    # People first: a stage may not need more approvals than people hold its roles (policies.validate_policy_fields).
    policy_upsert(tenant=tenant, type="BIG_CHANGE", actor=system,
                  fields={"route": [{"roles": ["senior_manager"], "approvals_required": 2}]})
    key, _ = api_key_create(tenant=tenant, name="change-tool", actor=system)
    deputy = make_person(tenant, "governing_body", f"gb{attempt}")
    now = timezone.now()
    delegation_create(actor=Actor(tenant=tenant, user=manager), delegator=manager, known_types={"BIG_CHANGE"},
                      wanted=DelegationInput(delegate=deputy, starts_at=now, ends_at=now + timedelta(days=1)))
    escalation = escalation_create(actor=Actor(tenant=tenant, api_key=key), type="BIG_CHANGE", reason="Migrate",
                                   source=SourceRef("change-tool", "change", "CHG-1"))
    def approve(person, code):
        return lambda: escalation_decide(actor=Actor(tenant=tenant, user=person), escalation=str(escalation.pk),
                                         decision="approve", justification="Reviewed the plan", otp=code)

    jobs = [approve(person, totp_code(person)) for person in (manager, deputy)]

    results = run_at_once(jobs)

    errors = [r for r in results if isinstance(r, DomainError)]
    assert len(errors) == len([r for r in results if isinstance(r, Exception)]), results
    assert Counter(e.status for e in errors) == {409: 1}
    escalation.refresh_from_db()
    assert (escalation.status, escalation.approvals_received) == (EscalationStatus.PENDING, 1)
    assert Decision.objects.filter(request=escalation.approval, decision="approve").count() == 1
    finished = escalation_decide(actor=Actor(tenant=tenant, user=other_manager), escalation=str(escalation.pk),
                                 decision="approve", justification="Second pair of eyes", otp=totp_code(other_manager))
    assert finished.status == EscalationStatus.APPROVED
