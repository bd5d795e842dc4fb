"""The escalation lifecycle as the people in CONTRACT.md live it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from approvals.models import Decision
from audit.models import AuditEvent
from escalations.models import Escalation, EscalationStatus
from escalations.policies import policy_upsert
from escalations.services import (
    Money,
    SourceRef,
    escalation_acknowledge,
    escalation_cancel,
    escalation_check,
    escalation_create,
    escalation_decide,
    escalation_record_execution,
)
from notifications.models import OutboxEvent
from privacy.vault import open_contact
from tests.conftest import totp_code
from trustguard.errors import Conflict, PermissionDenied, Unprocessable, ValidationFailed

pytestmark = pytest.mark.django_db

ORDER = SourceRef(system="shop", entity_type="order", entity_id="ORD-1001")


def naira(amount: int) -> Money:
    return Money(value_minor=amount * 100, currency="NGN")


def decide(actor, escalation, decision="approve", **kwargs):
    kwargs.setdefault("justification", "Checked the order and the customer history.")
    return escalation_decide(actor=actor, escalation=escalation, decision=decision, otp=totp_code(actor.user), **kwargs)


def test_a_2_5_million_naira_order_goes_to_the_ceo_and_is_approved(vendor, demo_actor):
    escalation = escalation_create(actor=vendor, reason="Large order", source=ORDER, amount=naira(2_500_000),
                                   requested_by="buyer@shop.example")

    assert escalation.type == "HIGH_VALUE"
    assert escalation.status == EscalationStatus.PENDING
    assert escalation.assigned_role == "ceo"
    assert escalation.amount_minor == 250_000_000
    assert escalation.expires_at - escalation.created_at == pytest.approx(timedelta(hours=24), abs=timedelta(seconds=5))

    approved = decide(demo_actor("ceo"), escalation)

    assert approved.status == EscalationStatus.APPROVED
    assert approved.decided_at is not None
    assert list(OutboxEvent.objects.filter(aggregate_id=escalation.pk).values_list("type", flat=True)) == [
        "escalation.created", "escalation.approved"]


def test_a_500_thousand_naira_order_is_not_escalated(vendor):
    check = escalation_check(actor=vendor, amount=naira(500_000))

    assert check.requires_escalation is False
    with pytest.raises(Unprocessable):
        escalation_create(actor=vendor, reason="Small order", source=ORDER, amount=naira(500_000))
    assert not Escalation.objects.exists()


def test_a_small_order_from_a_flagged_vendor_goes_to_the_ceo(vendor):
    escalation = escalation_create(actor=vendor, reason="Vendor on watch list", source=ORDER, amount=naira(20_000),
                                   flags=["vendor_flagged"])

    assert escalation.type == "VENDOR_FLAGGED"
    assert escalation.assigned_role == "ceo"


def test_a_high_risk_operation_change_needs_two_distinct_senior_managers(vendor, demo_actor):
    change = escalation_create(actor=vendor, type="OPERATION_CHANGE", risk_level="high", reason="Drop index",
                               source=SourceRef("dba-tool", "change", "CHG-7"), requested_by="dba@demo.example")
    assert (change.approvals_required, change.approvals_received) == (2, 0)

    change = decide(demo_actor("sm"), change)
    assert change.status == EscalationStatus.PENDING
    assert (change.approvals_required, change.approvals_received) == (2, 1)

    with pytest.raises(Conflict):
        decide(demo_actor("sm"), change)

    change = decide(demo_actor("sm2"), change)
    assert change.status == EscalationStatus.APPROVED
    assert change.approvals_received == 2


def test_a_low_risk_operation_change_is_approved_at_once(vendor):
    change = escalation_create(actor=vendor, type="OPERATION_CHANGE", risk_level="low", reason="Config tweak",
                               source=SourceRef("dba-tool", "change", "CHG-8"))

    assert change.status == EscalationStatus.APPROVED
    assert change.approvals_required == 0
    assert OutboxEvent.objects.filter(aggregate_id=change.pk, type="escalation.approved").exists()


def test_a_medium_risk_operation_change_needs_one_approval(vendor, demo_actor):
    change = escalation_create(actor=vendor, type="OPERATION_CHANGE", risk_level="medium", reason="Add column",
                               source=SourceRef("dba-tool", "change", "CHG-9"))
    assert change.approvals_required == 1

    assert decide(demo_actor("sm"), change).status == EscalationStatus.APPROVED


def test_the_requester_may_not_approve_their_own_escalation(demo_actor):
    ceo = demo_actor("ceo")
    mine = escalation_create(actor=ceo, type="HIGH_VALUE", reason="My own purchase", source=ORDER, amount=naira(3_000_000))

    with pytest.raises(PermissionDenied) as refused:
        decide(ceo, mine)
    assert refused.value.slug == "four-eyes"
    assert not Decision.objects.exists()


def test_the_requester_named_by_email_through_an_api_key_may_not_approve_either(vendor, demo_actor):
    mine = escalation_create(actor=vendor, reason="Order", source=ORDER, amount=naira(3_000_000),
                             requested_by="CEO@demo.example")

    with pytest.raises(PermissionDenied):
        decide(demo_actor("ceo"), mine)


def test_single_employee_mode_allows_self_approval_and_records_it(demo, demo_actor):
    tenant = demo["tenant_obj"]
    tenant.single_employee_mode = True
    tenant.save()
    ceo = demo_actor("ceo")
    mine = escalation_create(actor=ceo, type="HIGH_VALUE", reason="Only me here", source=ORDER, amount=naira(3_000_000))

    approved = decide(ceo, mine)

    assert approved.status == EscalationStatus.APPROVED
    assert Decision.objects.get().self_approved is True


def test_cdd_goes_from_compliance_officer_to_senior_manager_with_conditions(vendor, demo_actor):
    case = escalation_create(actor=vendor, type="HIGH_RISK_CDD", reason="PEP onboarding",
                             source=SourceRef("kyc", "customer", "CUS-55"))
    assert case.assigned_role == "compliance_officer"

    case = decide(demo_actor("co"), case, conditions=["Enhanced monitoring for 12 months"])
    assert case.status == EscalationStatus.PENDING
    assert case.current_stage == 1
    assert case.assigned_role == "senior_manager"
    # A plain-string condition becomes a tracked obligation, owned by the requester (escalations.obligations).
    assert [(c["text"], c["status"], c["owner"]) for c in case.conditions] == [
        ("Enhanced monitoring for 12 months", "open", "api_key:vendor")]

    with pytest.raises(PermissionDenied):
        decide(demo_actor("co2"), case)

    case = decide(demo_actor("sm"), case)
    assert case.status == EscalationStatus.APPROVED


def test_a_rejection_is_final(vendor, demo_actor):
    case = escalation_create(actor=vendor, type="SANCTIONS_MATCH", reason="Name match", source=ORDER)

    case = decide(demo_actor("co"), case, decision="reject", justification="True match on the list")
    assert case.status == EscalationStatus.REJECTED

    with pytest.raises(Conflict):
        decide(demo_actor("co2"), case)


def test_only_the_requester_may_cancel(vendor, demo_actor):
    case = escalation_create(actor=vendor, type="SMR", reason="Odd pattern", source=ORDER)

    with pytest.raises(PermissionDenied):
        escalation_cancel(actor=demo_actor("co"), escalation=case)
    cancelled = escalation_cancel(actor=vendor, escalation=case, reason="Duplicate")

    assert cancelled.status == EscalationStatus.CANCELLED
    with pytest.raises(Conflict):
        escalation_cancel(actor=vendor, escalation=case)


def test_execution_is_recorded_only_after_approval_and_only_by_the_requester(vendor, demo_actor):
    case = escalation_create(actor=vendor, reason="Order", source=ORDER, amount=naira(2_500_000))
    with pytest.raises(Conflict):
        escalation_record_execution(actor=vendor, escalation=case, result={"shipped": True})

    decide(demo_actor("ceo"), case)
    with pytest.raises(PermissionDenied):
        escalation_record_execution(actor=demo_actor("ceo"), escalation=case, result={"shipped": True})
    executed = escalation_record_execution(actor=vendor, escalation=case, result={"shipped": True})

    assert executed.status == EscalationStatus.EXECUTED
    assert executed.execution_result == {"shipped": True}


def test_editing_a_policy_does_not_touch_escalations_in_flight(vendor, demo, demo_actor):
    before = escalation_create(actor=vendor, type="OPERATION_CHANGE", risk_level="medium", reason="Change",
                               source=SourceRef("dba-tool", "change", "CHG-10"))

    policy_upsert(tenant=demo["tenant_obj"], type="OPERATION_CHANGE",
                  fields={"approvals_by_risk": {"low": 1, "medium": 2, "high": 2}, "expiry_seconds": 3600},
                  actor=demo_actor("ops"))
    after = escalation_create(actor=vendor, type="OPERATION_CHANGE", risk_level="medium", reason="Change",
                              source=SourceRef("dba-tool", "change", "CHG-11"))

    before.refresh_from_db()
    assert before.approvals_required == 1
    assert before.policy_snapshot["version"] == 1
    assert after.approvals_required == 2
    assert after.policy_version == 2
    assert decide(demo_actor("sm"), before).status == EscalationStatus.APPROVED


def test_acknowledging_needs_the_assigned_role_and_happens_once(vendor, demo_actor):
    case = escalation_create(actor=vendor, type="SMR", reason="Odd pattern", source=ORDER)

    with pytest.raises(PermissionDenied):
        escalation_acknowledge(actor=demo_actor("ceo"), escalation=case)
    case = escalation_acknowledge(actor=demo_actor("co"), escalation=case)

    assert case.status == EscalationStatus.ACKNOWLEDGED
    assert case.acknowledged_by == User.objects.get(username="co")
    with pytest.raises(Conflict):
        escalation_acknowledge(actor=demo_actor("co2"), escalation=case)


def test_a_deferral_needs_a_future_date_and_parks_the_escalation(vendor, demo_actor):
    case = escalation_create(actor=vendor, type="SMR", reason="Need bank statement", source=ORDER)

    with pytest.raises(ValidationFailed):
        decide(demo_actor("co"), case, decision="defer")
    until = timezone.now() + timedelta(hours=12)  # within its 24 h expiry
    case = decide(demo_actor("co"), case, decision="defer", defer_until=until)

    assert case.status == EscalationStatus.DEFERRED
    assert case.defer_until == until


def test_every_change_is_audited_in_the_same_transaction(vendor, demo_actor):
    case = escalation_create(actor=vendor, type="SMR", reason="Odd pattern", source=ORDER)
    escalation_acknowledge(actor=demo_actor("co"), escalation=case)
    decide(demo_actor("co"), case, decision="reject", justification="Explained by payroll")

    actions = list(AuditEvent.objects.filter(target_id=str(case.pk)).values_list("action", flat=True))
    assert actions == ["escalation.created", "escalation.acknowledged", "decision.recorded"]


def test_a_refused_decision_leaves_nothing_behind(vendor, demo_actor):
    case = escalation_create(actor=vendor, type="SMR", reason="Odd pattern", source=ORDER)
    outbox_before = OutboxEvent.objects.count()

    with pytest.raises(ValidationFailed):
        decide(demo_actor("co"), case, justification="   ")

    case.refresh_from_db()
    assert case.approvals_received == 0
    assert not Decision.objects.exists()
    assert OutboxEvent.objects.count() == outbox_before


def test_bad_create_input_is_refused_naming_every_field_and_nothing_is_written(vendor):
    with pytest.raises(ValidationFailed) as refused:
        escalation_create(actor=vendor, type="SMR", reason=" ", source=SourceRef("", "order", "X"),
                          amount=Money(value_minor=-5, currency="naira"), urgency="asap", requested_by="not-an-email")

    assert set(refused.value.errors or {}) == {"reason", "source.system", "amount.value_minor", "amount.currency", "urgency",
                                         "requested_by"}
    assert not Escalation.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_a_customer_contact_is_kept_with_the_phone_in_e164(vendor):
    escalation = escalation_create(actor=vendor, reason="Order", source=ORDER, amount=naira(2_500_000),
                                   contact={"email": "buyer@mail.example", "phone": "0803 123 4567"})

    # Sealed at rest under the customer's data key (privacy.vault); opened, it is the E.164 contact.
    assert set(escalation.contact) == {"$sealed"}
    assert open_contact(escalation.contact) == {"email": "buyer@mail.example", "phone": "+2348031234567"}
    with pytest.raises(ValidationFailed) as refused:
        escalation_create(actor=vendor, reason="Order", source=ORDER, amount=naira(2_500_000),
                          contact={"phone": "12"})
    assert "contact.phone" in (refused.value.errors or {})
