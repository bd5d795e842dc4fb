"""Amendments and the conversation, service side: who is told, the pinning rule, and the amendment-decision race."""

from __future__ import annotations

import pytest

from accounts.actors import Actor
from accounts.models import ApiKey
from approvals.models import Decision
from approvals.services import is_dismissed
from escalations.amendments import AMENDABLE_FIELDS, escalation_amend
from escalations.comments import comment_post
from escalations.models import Policy
from escalations.policies import policy_upsert
from escalations.services import SourceRef, escalation_create, escalation_decide
from notifications.models import Message
from notifications.relay import outbox_relay
from tests.approvals.test_concurrency import approve, run_at_once, setup_change
from tests.conftest import totp_code
from trustguard.errors import DomainError

CHG = SourceRef("dba-tool", "change", "CHG-9")


def change(actor, risk="high"):
    return escalation_create(actor=actor, type="OPERATION_CHANGE", reason="Reindex payments", source=CHG,
                             risk_level=risk)


@pytest.mark.django_db
def test_a_question_tells_the_requester_and_the_answer_tells_whoever_asked(demo_actor):
    co, sm = demo_actor("co"), demo_actor("sm")
    case = change(co)
    outbox_relay()
    comment_post(actor=sm, escalation=case, body="Is there a rollback plan?", question=True)
    outbox_relay()
    asked = Message.objects.get(purpose="escalation.commented", user=co.user, channel="in_app")
    assert "asks you a question" in asked.body and "rollback" not in asked.body  # the words stay in the case

    comment_post(actor=co, escalation=case, body="Yes: restore from BK-12.")
    outbox_relay()
    assert Message.objects.filter(purpose="escalation.commented", user=sm.user, channel="in_app").exists()


@pytest.mark.django_db
def test_a_mention_tells_that_person_of_the_tenant_only(demo_actor):
    co, sm = demo_actor("co"), demo_actor("sm")
    case = change(co)
    comment_post(actor=sm, escalation=case, body="@sm2 can you look? @nobody @other-ceo")
    outbox_relay()
    told = set(Message.objects.filter(purpose="escalation.commented").values_list("user__username", flat=True))
    assert told == {"sm2"}


@pytest.mark.django_db
def test_approvers_who_had_approved_are_told_their_approval_was_dismissed(demo_actor):
    co, sm = demo_actor("co"), demo_actor("sm")
    case = change(co)
    escalation_decide(actor=sm, escalation=case, decision="approve", justification="ok", otp=totp_code(sm.user))
    outbox_relay()
    escalation_amend(actor=co, escalation=case, changes={"reason": "Reindex payments, off-peak"},
                     justification="Moved to the night window")
    outbox_relay()
    told = Message.objects.get(purpose="escalation.amended", user=sm.user, channel="in_app")
    assert "approval was dismissed" in told.body
    assert Message.objects.filter(purpose="escalation.amended", user__username="sm2").exists()  # asked again


@pytest.mark.django_db
def test_a_lower_risk_amendment_needs_fewer_approvals_and_none_approves_at_once(demo_actor):
    co = demo_actor("co")
    case = change(co)
    assert escalation_amend(actor=co, escalation=case, changes={"risk_level": "medium"},
                            justification="Only a replica").approvals_required == 1
    assert escalation_amend(actor=co, escalation=case, changes={"risk_level": "low"},
                            justification="A no-op after all").status == "approved"


@pytest.mark.django_db
def test_an_amended_case_keeps_its_policy_version_unless_the_policy_says_take_the_current_one(demo, demo_actor):
    co = demo_actor("co")
    ops = demo_actor("ops")
    case = change(co, risk="medium")
    policy_upsert(tenant=demo["tenant_obj"], type="OPERATION_CHANGE",
                  fields={"approvals_by_risk": {"low": 0, "medium": 2, "high": 2}}, actor=ops)
    pinned = escalation_amend(actor=co, escalation=case, changes={"reason": "v2"}, justification="wording")
    assert (pinned.policy_version, pinned.approvals_required) == (1, 1)

    Policy.objects.filter(tenant=demo["tenant_obj"], type="OPERATION_CHANGE").update(amendments_take_current_version=True)
    current = escalation_amend(actor=co, escalation=case, changes={"reason": "v3"}, justification="wording")
    assert (current.policy_version, current.approvals_required) == (2, 2)


def test_the_amendable_fields_are_one_list():
    assert AMENDABLE_FIELDS == ("reason", "amount", "risk_level", "payload", "estimated_cost", "execution_window")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_amendment_racing_a_decision_never_leaves_an_approval_counted_for_the_old_content(make_tenant, make_person):
    tenant, managers, escalation = setup_change(make_tenant, make_person, quorum=2, people=3)
    escalation_decide(actor=Actor(tenant=tenant, user=managers[0]), escalation=escalation.pk,
                      decision="approve", justification="Plan fine", otp=totp_code(managers[0]))
    requester = Actor(tenant=tenant, api_key=ApiKey.objects.get(tenant=tenant, name="change-tool"))
    for round_ in range(3):
        jobs = [approve(tenant, managers[1 + round_ % 2], escalation, totp_code(managers[1 + round_ % 2])),
                lambda r=round_: escalation_amend(actor=requester, escalation=escalation.pk,
                                                  changes={"reason": f"Migrate, take {r}"}, justification="Revised")]
        results = run_at_once(jobs)
        assert all(not isinstance(r, Exception) or isinstance(r, DomainError) for r in results), results
        escalation.refresh_from_db()
        approval = escalation.approval
        approval.refresh_from_db()
        counted = [d for d in Decision.objects.filter(request=approval, decision="approve") if not is_dismissed(d, approval)]
        # Whatever the order, what counts is given in the current round and equals what the case says it has.
        assert all(d.round == approval.round for d in counted)
        assert escalation.approvals_received == len(counted)
        if escalation.status == "approved":  # the decision won and completed the quorum: the amendment was a 409
            assert any(isinstance(r, DomainError) and r.status == 409 for r in results)
            break


@pytest.mark.django_db
def test_a_comment_is_sealed_under_the_customers_key_and_erasing_the_customer_shreds_it(vendor, demo_actor):
    from escalations.comments import comments_of
    from privacy.models import Subject
    from privacy.vault import subject_erase_key, subject_id_of

    case = escalation_create(actor=vendor, type="SMR", reason="Cash deposits", source=CHG,
                             contact={"email": "ada@customer.example"})
    comment = comment_post(actor=demo_actor("co"), escalation=case, body="Ada said the cash is from her shop.")
    assert subject_id_of(comment.body) == subject_id_of(case.contact)
    assert [c.body for c in comments_of(case)] == ["Ada said the cash is from her shop."]

    subject_erase_key(Subject.objects.get(pk=subject_id_of(case.contact)))

    assert [c.body for c in comments_of(case)] == [None]  # shown as "[removed: personal data erased]"
