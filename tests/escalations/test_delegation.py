"""Out of office (issue 19): when approvers are away, a delegate decides on their behalf, the pair counts once,
authority is never passed on, and a ladder level of people who are all away is skipped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.actors import Actor
from accounts.delegations import DelegationInput, delegation_create, delegation_revoke
from accounts.models import Delegation, User
from approvals.models import Decision
from audit.models import AuditEvent
from escalations.models import EscalationStatus
from escalations.policies import policy_upsert
from escalations.selectors import QueueFilters, escalation_queue, escalation_waiting_for
from escalations.services import Money, SourceRef, escalation_create, escalation_decide
from escalations.standins import standins_sweep, who_must_act
from escalations.sweeps import sweep_deadlines
from notifications.models import Message, OutboxEvent
from notifications.relay import outbox_relay
from tests.conftest import totp_code
from trustguard.errors import Conflict, PermissionDenied, ValidationFailed

pytestmark = pytest.mark.django_db

ORDER = SourceRef(system="shop", entity_type="order", entity_id="ORD-2001")
TYPES = {"HIGH_VALUE", "VENDOR_FLAGGED", "SANCTIONS_MATCH", "HIGH_RISK_CDD", "SMR", "PROGRAM_APPROVAL",
         "OPERATION_CHANGE"}


def person(name: str) -> User:
    return User.objects.get(username=name)


def away(demo_actor, who: str, delegate: str | None, *, days: int = 3, types=(), start=None) -> Delegation:
    start = start or timezone.now()
    return delegation_create(actor=demo_actor(who), delegator=person(who), known_types=TYPES, wanted=DelegationInput(
        delegate=person(delegate) if delegate else None, starts_at=start, ends_at=start + timedelta(days=days),
        escalation_types=types))


def big_order(vendor, entity_id: str = "ORD-2001"):
    return escalation_create(actor=vendor, reason="Large order", amount=Money(250_000_000, "NGN"),
                             source=SourceRef("shop", "order", entity_id), requested_by="buyer@shop.example")


def decide(actor, escalation, decision="approve"):
    return escalation_decide(actor=actor, escalation=escalation.pk, decision=decision,
                             justification="Checked the order and the customer.", otp=totp_code(actor.user))


# --- the CEO on a plane ----------------------------------------------------------------------------------

def test_with_the_ceo_away_the_deputy_is_notified_instead_of_the_ceo(demo, demo_actor, vendor):
    away(demo_actor, "ceo", "sm")

    escalation = big_order(vendor)
    outbox_relay()

    asked = Message.objects.filter(event__aggregate_id=str(escalation.pk), audience="approver")
    assert {m.user_id for m in asked} == {person("sm").pk}
    assert all("standing in for" in m.body for m in asked)
    assert [a.user.username for a in who_must_act(escalation)] == ["sm"]
    assert who_must_act(escalation)[0].on_behalf_of == person("ceo")


def test_the_deputy_decides_with_their_own_code_and_the_decision_says_on_behalf_of_the_ceo(demo, demo_actor, vendor):
    away(demo_actor, "ceo", "sm")
    escalation = big_order(vendor)

    decided = decide(demo_actor("sm"), escalation)

    assert decided.status == EscalationStatus.APPROVED
    decision = Decision.objects.get(request=escalation.approval)
    assert (decision.decided_by.username, decision.on_behalf_of_id, decision.role) == ("sm", person("ceo").pk, "ceo")
    event = OutboxEvent.objects.get(aggregate_id=str(escalation.pk), type="escalation.approved")
    assert event.data["decision"]["decided_by"] == "sm"
    assert event.data["decision"]["on_behalf_of"] == "ceo"


def test_the_deputy_sees_the_case_in_their_queue_marked_as_held_for_the_ceo(demo, demo_actor, vendor):
    from escalations.standins import held_for

    away(demo_actor, "ceo", "sm", types=["HIGH_VALUE"])
    escalation = big_order(vendor)
    deputy = demo_actor("sm")

    rows = [dict(r) for r in escalation_queue(actor=deputy, filters=QueueFilters()).values("id", "assigned_role", "type")]

    assert escalation.pk in [r["id"] for r in rows]
    assert held_for(deputy, rows)[escalation.pk] == person("ceo")


def test_a_delegation_limited_to_other_types_does_not_hand_over_this_case(demo, demo_actor, vendor):
    away(demo_actor, "ceo", "sm", types=["VENDOR_FLAGGED"])
    escalation = big_order(vendor)

    with pytest.raises(PermissionDenied):
        decide(demo_actor("sm"), escalation)
    assert [a.user.username for a in who_must_act(escalation)] == ["ceo"]


def test_authority_received_by_delegation_is_never_passed_on_a_to_b_to_c(demo, demo_actor, vendor):
    away(demo_actor, "ceo", "sm")  # A -> B
    away(demo_actor, "sm", "co")  # B -> C: only B's own (senior manager) work goes to C
    escalation = big_order(vendor)

    with pytest.raises(PermissionDenied) as refused:
        decide(demo_actor("co"), escalation)

    assert refused.value.slug == "not-assigned"
    assert who_must_act(escalation) == []  # the CEO is away, and so is their delegate
    assert not Decision.objects.filter(request=escalation.approval).exists()


def test_a_delegate_may_not_decide_what_the_delegator_requested(demo, demo_actor):
    requester = demo_actor("co")
    escalation = escalation_create(actor=requester, type="SANCTIONS_MATCH", reason="Screening hit",
                                   source=SourceRef("screening", "customer", "C-9"))
    away(demo_actor, "co", "gb")

    with pytest.raises(PermissionDenied) as refused:
        decide(demo_actor("gb"), escalation, "reject")

    assert refused.value.slug == "four-eyes"


def test_a_delegate_may_not_decide_what_they_requested_themselves(demo, demo_actor):
    escalation = escalation_create(actor=demo_actor("ceo"), type="SANCTIONS_MATCH", reason="Screening hit",
                                   source=SourceRef("screening", "customer", "C-10"))
    away(demo_actor, "co", "ceo")
    away(demo_actor, "co2", None)

    with pytest.raises(PermissionDenied) as refused:
        decide(demo_actor("ceo"), escalation)

    assert refused.value.slug == "four-eyes"


# --- the pair counts once -------------------------------------------------------------------------------

def two_manager_change(demo, demo_actor):
    policy_upsert(tenant=demo["tenant_obj"], type="OPERATION_CHANGE",
                  fields={"route": [{"roles": ["senior_manager"], "approvals_required": 2}], "approvals_by_risk": {}},
                  actor=Actor.for_system(demo["tenant_obj"], "test"))
    return escalation_create(actor=demo_actor("ceo"), type="OPERATION_CHANGE", reason="Move the data centre",
                             source=SourceRef("change-tool", "change", "CHG-7"))


def test_the_delegator_and_the_delegate_cannot_make_a_quorum_of_two_alone(demo, demo_actor):
    escalation = two_manager_change(demo, demo_actor)
    decide(demo_actor("sm"), escalation)  # the manager approves, then leaves with gb standing in
    away(demo_actor, "sm", "gb")

    with pytest.raises(Conflict) as refused:
        decide(demo_actor("gb"), escalation)

    assert refused.value.slug == "duplicate-approval"
    decided = decide(demo_actor("sm2"), escalation)  # a second, distinct person completes it
    assert decided.status == EscalationStatus.APPROVED


def test_a_delegator_back_early_cannot_add_a_second_approval_to_their_delegates(demo, demo_actor):
    escalation = two_manager_change(demo, demo_actor)
    delegation = away(demo_actor, "sm", "gb")
    decide(demo_actor("gb"), escalation)  # on behalf of sm
    delegation_revoke(actor=demo_actor("sm"), delegation_id=delegation.pk)

    with pytest.raises(Conflict):
        decide(demo_actor("sm"), escalation)
    assert Decision.objects.filter(request=escalation.approval, decision="approve").count() == 1


def test_a_delegate_of_the_same_role_approving_in_their_own_right_still_counts_with_the_delegator(demo, demo_actor):
    escalation = two_manager_change(demo, demo_actor)
    away(demo_actor, "sm", "sm2")
    decide(demo_actor("sm2"), escalation)

    with pytest.raises(Conflict):
        decide(demo_actor("sm"), escalation)
    escalation.refresh_from_db()
    assert escalation.approvals_received == 1


# --- ladders that skip the absent -----------------------------------------------------------------------

def test_a_co_level_with_both_cos_away_and_no_delegate_is_skipped_to_the_senior_manager(demo, demo_actor, vendor):
    tenant = demo["tenant_obj"]
    policy_upsert(tenant=tenant, type="HIGH_VALUE", actor=Actor.for_system(tenant, "test"), fields={
        "ladder": ["ceo", "compliance_officer", "senior_manager", "governing_body"], "max_escalation_level": 2})
    escalation = big_order(vendor)
    away(demo_actor, "co", None)
    away(demo_actor, "co2", None)

    result = sweep_deadlines(now=escalation.ack_due_at + timedelta(minutes=1))

    escalation.refresh_from_db()
    assert (escalation.assigned_role, escalation.escalation_level) == ("senior_manager", 1)
    assert result.levels_skipped == 1
    skip = AuditEvent.objects.get(target_id=str(escalation.pk), action="escalation.ladder_level_skipped")
    assert skip.details["role"] == "compliance_officer"
    assert skip.details["away"] == ["co", "co2"]


def test_a_level_where_one_away_member_has_a_delegate_is_not_skipped(demo, demo_actor, vendor):
    tenant = demo["tenant_obj"]
    policy_upsert(tenant=tenant, type="HIGH_VALUE", actor=Actor.for_system(tenant, "test"), fields={
        "ladder": ["ceo", "compliance_officer", "senior_manager"], "max_escalation_level": 2})
    escalation = big_order(vendor)
    away(demo_actor, "co", "gb")
    away(demo_actor, "co2", None)

    sweep_deadlines(now=escalation.ack_due_at + timedelta(minutes=1))

    escalation.refresh_from_db()
    assert escalation.assigned_role == "compliance_officer"


def test_a_stage_only_away_people_could_satisfy_is_flagged_and_raises_an_event(demo, demo_actor, vendor):
    escalation = big_order(vendor)
    away(demo_actor, "ceo", None)  # from now: in force at once; the sweep announces the start

    standins_sweep(now=timezone.now() + timedelta(minutes=1))

    escalation.refresh_from_db()
    waiting = escalation_waiting_for(escalation)
    assert waiting.unstaffed == ("ceo",)
    assert "nobody present can decide" in waiting.sentence
    flagged = OutboxEvent.objects.get(aggregate_id=str(escalation.pk), type="escalation.unstaffed")
    assert flagged.data["away"] == ["ceo"]
    assert AuditEvent.objects.filter(target_id=str(escalation.pk), action="escalation.unstaffed").exists()



def test_a_case_opened_while_everyone_who_could_act_is_away_raises_the_event_at_once(demo, demo_actor, vendor):
    away(demo_actor, "ceo", None)  # on a plane, nobody standing in

    escalation = big_order(vendor)

    flagged = OutboxEvent.objects.get(aggregate_id=str(escalation.pk), type="escalation.unstaffed")
    assert flagged.data["away"] == ["ceo"]
    assert AuditEvent.objects.filter(target_id=str(escalation.pk), action="escalation.unstaffed").count() == 1


def test_a_case_opened_with_a_deputy_standing_in_raises_no_unstaffed_event(demo, demo_actor, vendor):
    away(demo_actor, "ceo", "gb")

    escalation = big_order(vendor)

    assert not OutboxEvent.objects.filter(aggregate_id=str(escalation.pk), type="escalation.unstaffed").exists()

# --- start, end, and the summary on return ---------------------------------------------------------------

def test_the_delegate_is_told_at_the_start_and_the_end_and_the_delegator_gets_a_summary(demo, demo_actor, vendor):
    start = timezone.now() + timedelta(minutes=2)
    delegation = away(demo_actor, "ceo", "sm", days=1, start=start)
    standins_sweep(now=start + timedelta(seconds=30))
    outbox_relay()
    told = Message.objects.filter(audience="delegation", user__username="sm", channel="in_app")
    ceo_name, deputy_name = person("ceo").get_full_name(), person("sm").get_full_name()
    assert [m.subject for m in told] == [f"You are standing in for {ceo_name}"]

    escalation = big_order(vendor)
    delegation.starts_at = timezone.now() - timedelta(minutes=1)  # a save: who is away is cached (tenant_config)
    delegation.save(update_fields=["starts_at"])
    decide(demo_actor("sm"), escalation)
    standins_sweep(now=timezone.now() + timedelta(days=2))  # past ends_at
    outbox_relay()

    assert Message.objects.filter(audience="delegation", user__username="sm", channel="in_app",
                                  subject=f"You no longer stand in for {ceo_name}").exists()
    summary = Message.objects.get(audience="delegation", user__username="ceo", channel="in_app")
    assert "1 decision" in summary.body and "ORD-2001" in summary.body and f"by {deputy_name}" in summary.body
    assert AuditEvent.objects.filter(target_id=str(delegation.pk), action="delegation.ended").exists()


def test_two_sweeps_announce_a_start_once(demo, demo_actor):
    start = timezone.now() + timedelta(minutes=1)
    away(demo_actor, "ceo", "sm", start=start)

    standins_sweep(now=start)
    standins_sweep(now=start + timedelta(minutes=1))

    assert OutboxEvent.objects.filter(type="delegation.started").count() == 1


# --- the rules of a delegation -------------------------------------------------------------------------

def test_times_fall_on_the_minute_in_the_tenants_zone(demo, demo_actor):
    from datetime import datetime

    start = (timezone.localtime() + timedelta(days=1)).replace(tzinfo=None, hour=9, minute=30, second=42)
    delegation = delegation_create(actor=demo_actor("ceo"), delegator=person("ceo"), known_types=TYPES,
                                   wanted=DelegationInput(delegate=person("sm"), starts_at=start,
                                                          ends_at=start + timedelta(hours=8)))

    local = timezone.localtime(delegation.starts_at)
    assert (local.hour, local.minute, local.second, local.microsecond) == (9, 30, 0, 0)
    assert isinstance(delegation.ends_at, datetime)


@pytest.mark.parametrize(("change", "field"), [
    ({"delegate": "ceo"}, "delegate"),
    ({"ends_at": -1}, "ends_at"),
    ({"ends_at": 91}, "ends_at"),
    ({"types": ["NOT_A_TYPE"]}, "escalation_types"),
])
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(demo, demo_actor, change, field):
    start = timezone.now() + timedelta(hours=1)
    days = change.get("ends_at", 2)
    with pytest.raises(ValidationFailed) as refused:
        delegation_create(actor=demo_actor("ceo"), delegator=person("ceo"), known_types=TYPES, wanted=DelegationInput(
            delegate=person(change.get("delegate", "sm")), starts_at=start, ends_at=start + timedelta(days=days),
            escalation_types=change.get("types", ())))

    assert field in (refused.value.errors or {})
    assert not Delegation.objects.exists()
    assert not AuditEvent.objects.filter(action="delegation.created").exists()


def test_overlapping_periods_of_one_delegator_are_refused(demo, demo_actor):
    away(demo_actor, "ceo", "sm", days=5)

    with pytest.raises(Conflict) as refused:
        away(demo_actor, "ceo", "gb", days=2, start=timezone.now() + timedelta(days=1))

    assert refused.value.status == 409
    assert Delegation.objects.count() == 1


def test_a_revoked_delegation_hands_the_case_back(demo, demo_actor, vendor):
    delegation = away(demo_actor, "ceo", "sm")
    escalation = big_order(vendor)

    delegation_revoke(actor=demo_actor("ceo"), delegation_id=delegation.pk)

    assert [a.user.username for a in who_must_act(escalation)] == ["ceo"]
    with pytest.raises(PermissionDenied):
        decide(demo_actor("sm"), escalation)
    assert AuditEvent.objects.filter(target_id=str(delegation.pk), action="delegation.revoked").exists()
