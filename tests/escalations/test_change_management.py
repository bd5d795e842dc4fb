"""The deadline sweep and change management: lapsed approvals and overdue obligations (time-machine), and two
sweeps at once counting a lapse once (real threads on PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from audit.models import AuditEvent
from escalations.intake import ExecutionWindow, Money, estimated_cost_of
from escalations.models import Escalation
from escalations.obligation_actions import condition_add_evidence
from escalations.policies import policy_upsert
from escalations.services import SourceRef, escalation_create, escalation_decide, escalation_record_execution
from escalations.sweeps import SweepResult, sweep_deadlines
from notifications.models import Message, OutboxEvent
from notifications.relay import outbox_relay
from tests.conftest import totp_code
from tests.escalations.test_deadlines_concurrency import run_together
from trustguard.errors import Conflict, PermissionDenied

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CHANGE = SourceRef("dba-tool", "change", "CHG-9")


def _change(vendor, **kwargs):
    return escalation_create(actor=vendor, type="OPERATION_CHANGE", reason="Resize the orders database",
                             source=CHANGE, risk_level="medium", **kwargs)


def _approve(actor, case, **kwargs):
    return escalation_decide(actor=actor, escalation=case, decision="approve", justification="Fine",
                             otp=totp_code(actor.user), **kwargs)


@pytest.mark.django_db
def test_an_approval_not_executed_in_time_is_expired_by_the_sweep_as_lapsed_and_people_are_told(demo, vendor,
                                                                                                   demo_actor):
    policy_upsert(tenant=vendor.tenant, type="OPERATION_CHANGE", fields={"approval_ttl_seconds": 2 * 3600},
                  actor=demo_actor("ops"))
    with time_machine.travel(T0, tick=False) as clock:
        case = _approve(demo_actor("sm"), _change(vendor))
        assert case.status == "approved" and case.approval_expires_at == T0 + 2 * HOUR

        clock.move_to(T0 + HOUR)
        assert sweep_deadlines().approvals_lapsed == 0
        clock.move_to(T0 + 3 * HOUR)
        first, second = sweep_deadlines(), sweep_deadlines()

    assert (first.approvals_lapsed, second.approvals_lapsed) == (1, 0)
    case.refresh_from_db()
    assert (case.status, case.expiry_reason) == ("expired", "approval_lapsed")
    expired = OutboxEvent.objects.get(type="escalation.expired", aggregate_id=str(case.pk))
    assert expired.data["expiry_reason"] == "approval_lapsed"
    assert AuditEvent.objects.filter(action="escalation.approval_lapsed", target_id=str(case.pk)).count() == 1
    outbox_relay()
    told = Message.objects.filter(event__type="escalation.expired", channel="in_app")
    assert {m.audience for m in told} >= {"approver"}  # the senior manager who approved it
    assert any("lapsed" in m.body for m in told)


@pytest.mark.django_db
def test_an_undecided_case_expires_with_reason_undecided(demo, vendor):
    with time_machine.travel(T0, tick=False) as clock:
        case = _change(vendor)
        clock.move_to(T0 + 80 * HOUR)
        sweep_deadlines()

    case.refresh_from_db()
    assert (case.status, case.expiry_reason) == ("expired", "undecided")


@pytest.mark.django_db
def test_an_overdue_obligation_raises_its_event_once_and_blocks_execution(demo, vendor, demo_actor):
    with time_machine.travel(T0, tick=False) as clock:
        case = _approve(demo_actor("sm"), _change(vendor),
                        conditions=[{"text": "Send the rollback plan", "due_at": (T0 + HOUR).isoformat()}])
        condition = case.conditions[0]

        clock.move_to(T0 + 2 * HOUR)
        results = [sweep_deadlines(), sweep_deadlines()]

        assert [r.conditions_overdue for r in results] == [1, 0]
        case.refresh_from_db()
        assert case.conditions[0]["status"] == "overdue"
        with pytest.raises(Conflict) as refused:
            escalation_record_execution(actor=vendor, escalation=case, result={})
        assert refused.value.slug == "conditions-unmet"
        # Evidence may still come late; an approver then decides it.
        condition_add_evidence(actor=vendor, escalation=case, condition_id=condition["id"], note="Sent late")

    overdue = OutboxEvent.objects.filter(type="escalation.condition_overdue", aggregate_id=str(case.pk))
    assert overdue.count() == 1
    assert overdue.get().data["overdue"][0]["id"] == condition["id"]
    outbox_relay()
    told = Message.objects.filter(event__type="escalation.condition_overdue", channel="in_app")
    assert {m.audience for m in told} == {"approver"}  # the approver (the requester is an API key)


@pytest.mark.django_db
def test_a_person_who_is_not_the_owner_requester_or_an_approver_cannot_add_evidence(demo, vendor, demo_actor):
    case = _approve(demo_actor("sm"), _change(vendor), conditions=["Tell the on-call team"])

    with pytest.raises(PermissionDenied):
        condition_add_evidence(actor=demo_actor("analyst"), escalation=case, condition_id=case.conditions[0]["id"],
                               note="I did it")


@pytest.mark.django_db
def test_routing_conditions_read_the_estimated_cost_of_a_request(demo, vendor):
    case = _change(vendor, estimated_cost=Money(4_500_000, "NGN"),
                   execution_window=ExecutionWindow(T0 + 1000 * 24 * HOUR, T0 + 1001 * 24 * HOUR))

    assert estimated_cost_of(case) == Money(4_500_000, "NGN")
    assert estimated_cost_of(_change(vendor)) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_started_together_expire_each_lapsed_approval_exactly_once(demo, vendor):
    ids = []
    for i in range(30):  # low risk: approved at once (the policy needs no approval), then left unexecuted
        case = escalation_create(actor=vendor, type="OPERATION_CHANGE", reason="Rotate keys", risk_level="low",
                                 source=SourceRef("dba-tool", "change", f"CHG-{i}"))
        assert case.status == "approved"
        ids.append(str(case.pk))
    Escalation.objects.filter(pk__in=ids).update(approval_expires_at=T0)

    results: list[SweepResult] = run_together(lambda: sweep_deadlines(chunk_size=5))

    assert sum(r.approvals_lapsed for r in results) == len(ids)
    assert set(Escalation.objects.filter(pk__in=ids).values_list("status", "expiry_reason")) == {
        ("expired", "approval_lapsed")}
    per_case = Counter(OutboxEvent.objects.filter(type="escalation.expired").values_list("aggregate_id", flat=True))
    assert per_case == dict.fromkeys(ids, 1)
    audited = Counter(AuditEvent.objects.filter(action="escalation.approval_lapsed")
                      .values_list("target_id", flat=True))
    assert audited == dict.fromkeys(ids, 1)


@pytest.mark.django_db
def test_the_approvers_email_about_a_lapse_says_so_and_asks_for_no_decision(demo, vendor, demo_actor):
    policy_upsert(tenant=vendor.tenant, type="OPERATION_CHANGE",
                  fields={"approval_ttl_seconds": 3600, "notify_channels": ["email", "in_app"]}, actor=demo_actor("ops"))
    with time_machine.travel(T0, tick=False) as clock:
        case = _approve(demo_actor("sm"), _change(vendor, estimated_cost=Money(4_500_000, "NGN")))
        clock.move_to(T0 + 2 * HOUR)
        sweep_deadlines()
    outbox_relay()

    email = Message.objects.get(event__type="escalation.expired", channel="email", audience="approver")
    assert email.subject.startswith("Approval lapsed unexecuted")
    assert "lapsed: it was not executed by" in email.body
    assert "Review and decide" not in email.body_html and "Open the case" in email.body_html
    assert str(case.pk) in email.body
