"""Named people in the engine (issue 22): who must act, notifications at stage open, stand-ins and unstaffed
stages count the people a stage names as they count a role's members."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import Membership
from approvals.models import Decision
from audit.models import AuditEvent
from escalations.models import Escalation, EscalationStatus
from escalations.policies import policy_upsert
from escalations.selectors import escalation_waiting_for
from escalations.standins import who_must_act
from escalations.sweeps import sweep_deadlines
from notifications.models import Message, OutboxEvent
from notifications.relay import outbox_relay
from tests.escalations.test_delegation import away, big_order, decide, person
from trustguard.errors import PermissionDenied

pytestmark = pytest.mark.django_db


def route(demo, *stages: dict) -> None:
    tenant = demo["tenant_obj"]
    from accounts.actors import Actor

    policy_upsert(tenant=tenant, type="HIGH_VALUE", fields={"route": list(stages)}, actor=Actor.for_system(tenant, "t"))


def asked(escalation: Escalation) -> set[str]:
    return {m.user.username for m in Message.objects.filter(event__aggregate_id=str(escalation.pk), audience="approver")
            .select_related("user") if m.user is not None}


def test_a_named_person_is_asked_beside_the_roles_members_when_the_case_opens(demo, vendor):
    route(demo, {"roles": ["ceo"], "people": ["analyst"], "approvals_required": 1})

    escalation = big_order(vendor)
    outbox_relay()

    assert [a.user.username for a in who_must_act(escalation)] == ["ceo", "analyst"]
    assert asked(escalation) == {"ceo", "analyst"}
    assert escalation_waiting_for(escalation).sentence.startswith("1 more approval from ceo or analyst")


def test_a_second_stage_that_names_a_person_asks_them_when_it_opens(demo, demo_actor, vendor):
    route(demo, {"roles": ["ceo"], "approvals_required": 1}, {"roles": [], "people": ["sm2"], "approvals_required": 1})
    escalation = big_order(vendor)

    decided = decide(demo_actor("ceo"), escalation)
    outbox_relay()

    assert (decided.status, decided.current_stage, decided.assigned_role) == (EscalationStatus.PENDING, 1, "")
    opened = Message.objects.filter(event__aggregate_id=str(escalation.pk), event__type="escalation.approval_recorded",
                                    audience="approver")
    assert {m.user.username for m in opened if m.user is not None} == {"sm2"}  # the stage asks no role: its named person only
    assert decide(demo_actor("sm2"), escalation).status == EscalationStatus.APPROVED


def test_named_people_are_still_asked_when_the_case_moves_up_the_ladder(demo, vendor):
    route(demo, {"roles": ["compliance_officer"], "people": ["analyst"], "approvals_required": 1})
    escalation = big_order(vendor)

    sweep_deadlines(now=escalation.ack_due_at + timedelta(minutes=1))
    escalation.refresh_from_db()

    assert escalation.assigned_role == "senior_manager"
    assert "analyst" in [a.user.username for a in who_must_act(escalation)]


def test_a_named_person_away_is_replaced_by_their_delegate_who_decides_on_their_behalf(demo, demo_actor, vendor):
    route(demo, {"roles": [], "people": ["gb"], "approvals_required": 1})
    away(demo_actor, "gb", "co2")
    escalation = big_order(vendor)

    people = who_must_act(escalation)
    decided = decide(demo_actor("co2"), escalation)

    assert [(a.user.username, a.on_behalf_of) for a in people] == [("co2", person("gb"))]
    assert decided.status == EscalationStatus.APPROVED
    decision = Decision.objects.get(request=escalation.approval)
    assert (decision.decided_by.username, decision.on_behalf_of_id, decision.role) == ("co2", person("gb").pk, "")


def test_a_named_person_away_with_nobody_standing_in_leaves_the_stage_unstaffed(demo, demo_actor, vendor):
    route(demo, {"roles": [], "people": ["gb"], "approvals_required": 1})
    away(demo_actor, "gb", None)

    escalation = big_order(vendor)

    flagged = OutboxEvent.objects.get(aggregate_id=str(escalation.pk), type="escalation.unstaffed")
    assert flagged.data["away"] == ["gb"]
    assert escalation_waiting_for(escalation).unstaffed == ("gb",)


def test_a_named_person_who_left_the_tenant_leaves_the_stage_unstaffed_and_decides_nothing(demo, demo_actor, vendor):
    route(demo, {"roles": [], "people": ["gb"], "approvals_required": 1})
    gb = demo_actor("gb")  # signed in before they left
    Membership.objects.filter(user__username="gb", tenant=demo["tenant_obj"]).update(is_active=False)

    escalation = big_order(vendor)

    assert who_must_act(escalation) == []
    assert AuditEvent.objects.filter(target_id=str(escalation.pk), action="escalation.unstaffed").count() == 1
    with pytest.raises(PermissionDenied):
        decide(gb, escalation)


def test_a_person_in_no_role_of_the_stage_and_not_named_is_refused(demo, demo_actor, vendor):
    route(demo, {"roles": ["ceo"], "people": ["gb"], "approvals_required": 1})
    escalation = big_order(vendor)

    with pytest.raises(PermissionDenied):
        decide(demo_actor("sm"), escalation)

    assert not Decision.objects.filter(request=escalation.approval).exists()


def test_the_delegate_of_a_named_person_sees_the_case_in_their_queue_held_for_them(demo, demo_actor, vendor):
    from escalations.selectors import QueueFilters, escalation_queue
    from escalations.standins import held_for

    route(demo, {"roles": [], "people": ["gb"], "approvals_required": 1})
    away(demo_actor, "gb", "co2")
    escalation = big_order(vendor)
    deputy = demo_actor("co2")

    rows = [dict(r) for r in escalation_queue(actor=deputy, filters=QueueFilters()).values("id", "assigned_role", "type")]

    assert escalation.pk in [r["id"] for r in rows]
    assert held_for(deputy, rows)[escalation.pk] == person("gb")
