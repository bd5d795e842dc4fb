"""SLA deadlines, swept by beat: re-escalation up the ladder, expiry, deferral wake-up, reminders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command

from accounts.models import Membership
from approvals.models import ApprovalRequest
from audit.hashing import compute_hash
from audit.models import AuditEvent
from audit.sealing import audit_seal_pending
from escalations.models import Escalation, EscalationStatus, Policy
from escalations.selectors import WaitingKind, escalation_waiting_for
from escalations.services import SourceRef, escalation_acknowledge, escalation_create, escalation_decide
from escalations.sweeps import sweep_deadlines
from notifications.models import OutboxEvent
from tests.conftest import totp_code

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
CUSTOMER = SourceRef(system="core-banking", entity_type="customer", entity_id="CUST-42")


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def open_case(vendor, type: str = "SMR", **kwargs) -> Escalation:
    """An escalation created at the current (travelled) time. SMR: compliance officer, ack SLA 4 h, expiry 24 h."""
    return escalation_create(actor=vendor, type=type, reason="Unusual cash deposits", source=CUSTOMER,
                             requested_by="analyst@demo.example", **kwargs)


def events(escalation: Escalation, type: str | None = None) -> list[OutboxEvent]:
    qs = OutboxEvent.objects.filter(aggregate_id=str(escalation.pk))
    return list(qs.filter(type=type) if type else qs)


def audit_actions(escalation: Escalation) -> list[str]:
    audit_seal_pending()  # chain order: the events on their chain
    return list(AuditEvent.objects.filter(target_type="escalation", target_id=str(escalation.pk))
                .order_by("seq").values_list("action", flat=True))


def assert_chain_intact(tenant_id: int) -> None:
    audit_seal_pending()
    prev = ""
    for event in AuditEvent.objects.filter(tenant_id=tenant_id).order_by("seq"):
        assert event.prev_hash == prev
        assert event.hash == compute_hash(prev, event)
        prev = event.hash


# --- re-escalation ------------------------------------------------------------------------------------

def test_an_unacknowledged_case_climbs_co_to_sm_to_gb_and_stops_at_the_top(vendor, clock):
    case = open_case(vendor)
    assert (case.assigned_role, case.escalation_level, case.ack_due_at) == ("compliance_officer", 0, T0 + 4 * HOUR)

    clock.shift(4 * HOUR - SECOND)
    sweep_deadlines()
    assert Escalation.objects.get(pk=case.pk).escalation_level == 0

    clock.shift(2 * SECOND)  # T0 + 4 h + 1 s: the compliance officer missed the deadline
    result = sweep_deadlines()
    case.refresh_from_db()
    assert result.escalated == 1
    assert (case.assigned_role, case.escalation_level, case.status) == ("senior_manager", 1, "pending")
    assert case.ack_due_at == T0 + 8 * HOUR + SECOND
    assert case.approval.stages.get(index=0).assigned_role == "senior_manager"
    escalated = events(case, "escalation.escalated")
    assert [(e.data["from_role"], e.data["to_role"], e.data["escalation_level"]) for e in escalated] == [
        ("compliance_officer", "senior_manager", 1)]

    clock.shift(4 * HOUR)
    sweep_deadlines()
    case.refresh_from_db()
    assert (case.assigned_role, case.escalation_level) == ("governing_body", 2)

    clock.shift(4 * HOUR)
    result = sweep_deadlines()
    case.refresh_from_db()
    assert (result.escalated, result.top_alerts) == (0, 1)
    assert (case.assigned_role, case.escalation_level, case.status) == ("governing_body", 2, "pending")
    assert case.top_alerted_at is not None

    clock.shift(HOUR)
    assert sweep_deadlines().total == 0  # alerted once per breach, not on every sweep
    assert len(events(case, "escalation.sla_breached")) == 1
    assert len(events(case, "escalation.escalated")) == 2
    # The compliance officer was reminded at 3 h; the sweeps then ran only at each deadline, so no later reminder.
    assert audit_actions(case) == ["escalation.created", "escalation.reminder_sent", "escalation.escalated",
                                   "escalation.escalated", "escalation.sla_breached"]
    assert AuditEvent.objects.filter(action="escalation.escalated", actor_label="system:sla_sweep").count() == 2
    assert_chain_intact(case.tenant_id)


def test_a_top_of_ladder_alert_and_a_re_escalation_in_one_chunk_each_keep_their_own_state(vendor, clock):
    at_top = open_case(vendor)
    for _ in range(2):  # compliance officer -> senior manager -> governing body (level 2, the policy's maximum)
        clock.shift(4 * HOUR + SECOND)
        sweep_deadlines()
    fresh = escalation_create(actor=vendor, type="SMR", reason="Unusual cash deposits",
                              source=SourceRef("core-banking", "customer", "CUST-43"))
    top_before = Escalation.objects.get(pk=at_top.pk)
    assert fresh.ack_due_at == top_before.ack_due_at == T0 + 12 * HOUR + 2 * SECOND

    clock.shift(4 * HOUR + SECOND)  # both missed the same deadline: one chunk writes an alert and a move up
    result = sweep_deadlines()

    assert (result.top_alerts, result.escalated) == (1, 1)
    top_after, fresh_after = Escalation.objects.get(pk=at_top.pk), Escalation.objects.get(pk=fresh.pk)
    assert (top_after.assigned_role, top_after.escalation_level, top_after.current_stage) == ("governing_body", 2, 0)
    assert (top_after.ack_due_at, top_after.next_deadline_at) == (top_before.ack_due_at, top_before.next_deadline_at)
    assert top_after.top_alerted_at == T0 + 12 * HOUR + 3 * SECOND
    assert (fresh_after.assigned_role, fresh_after.escalation_level) == ("senior_manager", 1)
    assert fresh_after.ack_due_at == T0 + 16 * HOUR + 3 * SECOND
    assert fresh_after.updated_at == top_after.updated_at == T0 + 12 * HOUR + 3 * SECOND
    assert_chain_intact(at_top.tenant_id)


def test_the_senior_manager_asked_after_a_re_escalation_may_decide(vendor, demo_actor, clock):
    case = open_case(vendor)
    clock.shift(4 * HOUR + SECOND)
    sweep_deadlines()

    decided = escalation_decide(actor=demo_actor("sm"), escalation=case, decision="approve",
                                justification="Deposits match the payroll contract.", otp=totp_code(demo_actor("sm").user))

    assert decided.status == EscalationStatus.APPROVED


def test_an_acknowledged_case_is_not_re_escalated(vendor, demo_actor, clock):
    case = open_case(vendor)
    clock.shift(HOUR)
    escalation_acknowledge(actor=demo_actor("co"), escalation=case)

    clock.shift(10 * HOUR)
    sweep_deadlines()

    case.refresh_from_db()
    assert (case.status, case.assigned_role, case.escalation_level) == ("acknowledged", "compliance_officer", 0)
    assert events(case, "escalation.escalated") == []
    assert events(case, "escalation.reminder") == []


def test_a_ladder_level_without_an_active_member_is_skipped_and_audited(vendor, demo, clock):
    Membership.objects.filter(tenant=demo["tenant_obj"], role="senior_manager").update(is_active=False)
    case = open_case(vendor)

    clock.shift(4 * HOUR + SECOND)
    result = sweep_deadlines()

    case.refresh_from_db()
    assert (case.assigned_role, case.escalation_level) == ("governing_body", 1)
    assert result.levels_skipped == 1
    skip = AuditEvent.objects.get(action="escalation.ladder_level_skipped", target_id=str(case.pk))
    assert skip.details["role"] == "senior_manager"
    assert events(case, "escalation.escalated")[0].data["skipped_roles"] == ["senior_manager"]


def test_a_case_assigned_off_the_ladder_only_alerts(vendor, clock):
    order = escalation_create(actor=vendor, reason="Large order", source=SourceRef("shop", "order", "ORD-9"),
                              type="HIGH_VALUE")
    assert order.assigned_role == "ceo"

    clock.shift(4 * HOUR + SECOND)
    sweep_deadlines()

    order.refresh_from_db()
    assert (order.assigned_role, order.escalation_level) == ("ceo", 0)
    [alert] = events(order, "escalation.sla_breached")
    assert alert.data["reason"] == "not_on_ladder"


# --- expiry -------------------------------------------------------------------------------------------

def test_a_case_past_its_expiry_expires_and_closes_its_approval_request(vendor, demo_actor, clock):
    case = open_case(vendor)  # SMR, medium risk: expiry outcome "expire"
    escalation_acknowledge(actor=demo_actor("co"), escalation=case)

    clock.shift(24 * HOUR + SECOND)
    result = sweep_deadlines()

    case.refresh_from_db()
    assert result.expired == 1
    assert case.status == EscalationStatus.EXPIRED
    assert case.closed_at == T0 + 24 * HOUR + SECOND
    assert case.approval.status == ApprovalRequest.Status.CANCELLED
    [expired] = events(case, "escalation.expired")
    assert expired.data["status"] == "expired"
    assert "escalation.expired" in audit_actions(case)
    assert events(case, "escalation.approved") == []


def test_a_high_risk_case_whose_policy_says_reject_is_rejected_on_expiry(vendor, clock):
    case = open_case(vendor, type="SANCTIONS_MATCH")  # high risk by default; high_risk_expiry_outcome=reject
    assert case.risk_level == "high"

    clock.shift(24 * HOUR + SECOND)
    result = sweep_deadlines()

    case.refresh_from_db()
    assert result.rejected_on_expiry == 1
    assert case.status == EscalationStatus.REJECTED
    assert case.approval.status == ApprovalRequest.Status.REJECTED
    [rejected] = events(case, "escalation.rejected")
    assert rejected.data["reason"] == "expired"
    assert events(case, "escalation.escalated") == []  # expiry runs first: a closed case is not re-escalated


# --- deferral -----------------------------------------------------------------------------------------

def test_a_deferred_case_wakes_up_and_its_deferred_time_does_not_count_where_the_policy_lets_deferrals_extend(
        vendor, demo_actor, clock):
    Policy.objects.filter(tenant=vendor.tenant, type="SMR").update(deferral_may_extend_expiry=True)
    case = open_case(vendor)
    original_expiry = case.expires_at
    clock.shift(HOUR)
    co = demo_actor("co")
    escalation_decide(actor=co, escalation=case, decision="defer", justification="Waiting for bank statements.",
                      otp=totp_code(co.user), defer_until=T0 + 3 * HOUR)

    clock.shift(HOUR)  # T0 + 2 h: still deferred, and not re-escalated even once its old ack deadline passed
    sweep_deadlines()
    assert Escalation.objects.get(pk=case.pk).status == EscalationStatus.DEFERRED

    clock.shift(HOUR)  # T0 + 3 h: the deferral runs out
    result = sweep_deadlines()
    case.refresh_from_db()
    assert result.resumed == 1
    assert (case.status, case.current_stage, case.assigned_role) == ("pending", 0, "compliance_officer")
    assert case.ack_due_at == T0 + 3 * HOUR + 4 * HOUR
    assert case.expires_at == original_expiry + 2 * HOUR  # the two deferred hours are added back
    assert case.defer_until is None
    assert len(events(case, "escalation.resumed")) == 1

    clock.move_to(original_expiry + SECOND)
    sweep_deadlines()
    assert Escalation.objects.get(pk=case.pk).status != EscalationStatus.EXPIRED

    clock.move_to(original_expiry + 2 * HOUR + SECOND)
    sweep_deadlines()
    assert Escalation.objects.get(pk=case.pk).status == EscalationStatus.EXPIRED


# --- reminders ----------------------------------------------------------------------------------------

def test_a_reminder_goes_to_the_assigned_role_once_at_75_percent_of_the_ack_sla(vendor, clock):
    case = open_case(vendor)  # ack SLA 4 h: the reminder is due at 3 h

    clock.shift(3 * HOUR - SECOND)
    assert sweep_deadlines().reminders == 0

    clock.shift(SECOND)
    assert sweep_deadlines().reminders == 1
    clock.shift(30 * 60 * SECOND)
    assert sweep_deadlines().reminders == 0

    [reminder] = events(case, "escalation.reminder")
    assert reminder.data["assigned_role"] == "compliance_officer"
    assert Escalation.objects.get(pk=case.pk).reminder_sent_at == T0 + 3 * HOUR


def test_each_ladder_level_gets_its_own_reminder(vendor, clock):
    case = open_case(vendor)
    clock.shift(4 * HOUR + SECOND)
    sweep_deadlines()  # no sweep ran at 3 h: the officer's reminder is moot; re-escalated to the senior manager
    clock.shift(3 * HOUR)
    sweep_deadlines()

    assert [e.data["assigned_role"] for e in events(case, "escalation.reminder")] == ["senior_manager"]


# --- what is still needed -----------------------------------------------------------------------------

def test_waiting_for_says_who_must_act_and_where_it_goes_next(vendor, clock):
    case = open_case(vendor)

    waiting = escalation_waiting_for(case)

    assert (waiting.kind, waiting.role, waiting.approvals_missing, waiting.next_role, waiting.deadline) == (
        WaitingKind.ACKNOWLEDGEMENT, "compliance_officer", 1, "senior_manager", T0 + 4 * HOUR)
    # T0 + 4 h is 12:00 UTC, 13:00 in Lagos (TIME_ZONE)
    assert waiting.sentence == ("1 more approval from compliance_officer; "
                                "re-escalates to senior_manager at 13:00 if not acknowledged")


def test_waiting_for_at_the_top_of_the_ladder_after_the_breach_asks_for_a_manual_decision(vendor, clock):
    case = open_case(vendor)
    for _ in range(3):
        clock.shift(4 * HOUR + SECOND)
        sweep_deadlines()
    case.refresh_from_db()

    waiting = escalation_waiting_for(case)

    assert (waiting.kind, waiting.role, waiting.next_role) == (WaitingKind.DECISION, "governing_body", None)
    assert "manual decision" in waiting.sentence


def test_run_sweeps_runs_the_deadline_sweep_and_prints_what_it_did(vendor, clock, capsys):
    open_case(vendor)
    clock.shift(4 * HOUR + SECOND)

    call_command("run_sweeps", only=["escalations.sweep_deadlines"])

    assert "escalations.sweep_deadlines: 0 resumed from deferral, 0 expired, 0 rejected on expiry, 1 re-escalated" in (
        capsys.readouterr().out)
