"""Deadlines a decision cannot outrun (issue #27): enforced when someone acts, not only when the sweep runs.

No sweep runs in these tests: a decision or acknowledgement one second after expires_at is refused with a 409
naming the deadline, and the case is expired (or rejected, as its policy says) in the same transaction, by the
sweep's own transition. Deferrals are bounded by the policy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from audit.models import AuditEvent
from escalations.models import Escalation, EscalationStatus, Policy
from escalations.services import SourceRef, escalation_create, escalation_decide
from notifications.models import OutboxEvent
from tests.conftest import totp_code
from trustguard.errors import Conflict

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
CUSTOMER = SourceRef(system="core-banking", entity_type="customer", entity_id="CUST-42")


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def case(vendor, clock) -> Escalation:
    """SMR: assigned to the compliance officer, expires 24 h after creation."""
    return escalation_create(actor=vendor, type="SMR", reason="Unusual cash deposits", source=CUSTOMER,
                             requested_by="analyst@demo.example")


def problem(response) -> dict:
    assert response["Content-Type"] == "application/problem+json", response.content
    return response.json()


def token(demo, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo['by_name'][who]['api_token']}"}


def test_a_decision_one_second_after_expiry_before_any_sweep_is_409_naming_the_deadline_and_the_case_is_expired(
        client, demo, demo_actor, case, clock):
    clock.move_to(case.expires_at + SECOND)

    response = client.post(f"/api/v1/escalations/{case.pk}/decisions", content_type="application/json",
                           data={"decision": "approve", "justification": "Looks fine",
                                 "otp": totp_code(demo_actor("co").user)}, headers=token(demo, "co"))

    body = problem(response)
    assert response.status_code == 409
    assert body["deadline"] == "expires_at" and "expires_at" in body["detail"]
    assert body["status"] == 409 and body["type"].endswith("/deadline-passed")
    case.refresh_from_db()
    assert case.status == EscalationStatus.EXPIRED
    assert OutboxEvent.objects.filter(aggregate_id=str(case.pk), type="escalation.expired").count() == 1
    assert AuditEvent.objects.filter(target_id=str(case.pk), action="escalation.expired").count() == 1
    assert not AuditEvent.objects.filter(target_id=str(case.pk), action="decision.recorded").exists()


def test_an_acknowledgement_after_expiry_is_409_and_the_case_takes_its_policys_outcome(
        client, demo, vendor, clock):
    Policy.objects.filter(tenant=vendor.tenant, type="SMR").update(expiry_outcome="reject")
    case = escalation_create(actor=vendor, type="SMR", reason="Unusual cash deposits", source=CUSTOMER)
    clock.move_to(case.expires_at + SECOND)

    response = client.post(f"/api/v1/escalations/{case.pk}/acknowledge", content_type="application/json", data={},
                           headers=token(demo, "co"))

    assert response.status_code == 409 and problem(response)["deadline"] == "expires_at"
    assert Escalation.objects.get(pk=case.pk).status == EscalationStatus.REJECTED


def test_a_decision_just_before_expiry_is_still_accepted(demo_actor, case, clock):
    clock.move_to(case.expires_at - SECOND)
    co = demo_actor("co")

    decided = escalation_decide(actor=co, escalation=case, decision="approve", justification="In time",
                                otp=totp_code(co.user))

    assert decided.status == EscalationStatus.APPROVED


def test_a_deferral_past_the_expiry_is_refused_naming_defer_until_unless_the_policy_lets_it_extend(
        client, demo, demo_actor, vendor, case, clock):
    co = demo_actor("co")
    body = {"decision": "defer", "justification": "Waiting for statements", "otp": totp_code(co.user),
            "defer_until": (case.expires_at + SECOND).isoformat()}

    refused = client.post(f"/api/v1/escalations/{case.pk}/decisions", content_type="application/json", data=body,
                          headers=token(demo, "co"))

    assert refused.status_code == 400 and "defer_until" in problem(refused)["errors"]
    assert Escalation.objects.get(pk=case.pk).status == EscalationStatus.PENDING

    Policy.objects.filter(tenant=vendor.tenant, type="SMR").update(deferral_may_extend_expiry=True)
    extending = escalation_create(actor=vendor, type="SMR", reason="Another", source=CUSTOMER)
    clock.shift(31)  # a fresh time step for the next code
    deferred = escalation_decide(actor=co, escalation=extending, decision="defer", justification="Statements due",
                                 otp=totp_code(co.user), defer_until=extending.expires_at + timedelta(days=3))

    assert deferred.status == EscalationStatus.DEFERRED
    [event] = OutboxEvent.objects.filter(aggregate_id=str(extending.pk), type="escalation.deferred")
    assert event.data["decision"]["extends_expiry"] is True
    audited = AuditEvent.objects.get(target_id=str(extending.pk), action="decision.recorded")
    assert audited.details["decision"]["extends_expiry"] is True


def test_a_deferral_to_the_year_9999_is_refused_by_the_policys_maximum(client, demo, demo_actor, vendor, case):
    Policy.objects.filter(tenant=vendor.tenant, type="SMR").update(deferral_may_extend_expiry=True)
    parked = escalation_create(actor=vendor, type="SMR", reason="Park it", source=CUSTOMER)

    response = client.post(f"/api/v1/escalations/{parked.pk}/decisions", content_type="application/json",
                           data={"decision": "defer", "justification": "Later", "otp": totp_code(demo_actor("co").user),
                                 "defer_until": "9999-12-31T00:00:00Z"}, headers=token(demo, "co"))

    assert response.status_code == 400
    assert problem(response)["errors"]["defer_until"] == ["At most 30 days from now."]


def test_a_deferred_case_whose_clock_runs_is_expired_at_its_deadline_when_someone_decides_before_the_sweep(
        demo_actor, case, clock):
    co = demo_actor("co")
    escalation_decide(actor=co, escalation=case, decision="defer", justification="Waiting",
                      otp=totp_code(co.user), defer_until=case.expires_at - timedelta(hours=1))
    clock.move_to(case.expires_at + SECOND)

    with pytest.raises(Conflict, match="expires_at"):
        escalation_decide(actor=co, escalation=case, decision="approve", justification="Late",
                          otp=totp_code(co.user))

    case.refresh_from_db()
    assert case.status == EscalationStatus.EXPIRED
