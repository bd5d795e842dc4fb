"""Every decision needs a fresh second factor; a code counts once; wrong codes lock out."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import OtpChallenge, StepUpState, User
from accounts.stepup import challenge_create
from approvals.models import Decision
from audit.models import AuditEvent
from escalations.models import EscalationStatus
from escalations.services import SourceRef, escalation_create, escalation_decide, stepup_subject
from notifications.models import Delivery, Message, OutboxEvent, WebhookEndpoint
from notifications.relay import outbox_relay
from tests.approvals.test_concurrency import run_at_once
from tests.conftest import totp_code
from trustguard.errors import PermissionDenied, TooManyRequests, ValidationFailed

pytestmark = pytest.mark.django_db


@pytest.fixture
def sanctions(vendor):
    """Two sanctions matches waiting for a compliance officer."""
    return [escalation_create(actor=vendor, type="SANCTIONS_MATCH", reason="Name match",
                              source=SourceRef("screening", "payment", f"PAY-{i}")) for i in range(2)]


def reject(actor, escalation, otp):
    return escalation_decide(actor=actor, escalation=escalation, decision="reject", justification="True match", otp=otp)


def defer(actor, escalation, otp):
    return escalation_decide(actor=actor, escalation=escalation, decision="defer", justification="Need ID",
                             defer_until=timezone.now() + timedelta(hours=12), otp=otp)


def test_a_valid_totp_code_lets_the_decision_through(demo_actor, sanctions):
    co = demo_actor("co")

    assert reject(co, sanctions[0], totp_code(co.user)).status == EscalationStatus.REJECTED


def test_no_code_or_a_malformed_code_is_a_validation_error_and_not_counted(demo_actor, sanctions):
    co = demo_actor("co")

    for otp in (None, "", "12ab56", "1234"):
        with pytest.raises(ValidationFailed) as refused:
            reject(co, sanctions[0], otp)
        assert "otp" in (refused.value.errors or {})
    assert not StepUpState.objects.filter(user=co.user, failures__gt=0).exists()


def test_a_totp_code_replayed_on_another_escalation_is_refused_and_audited(demo_actor, sanctions):
    co = demo_actor("co")
    code = totp_code(co.user)
    reject(co, sanctions[0], code)

    with pytest.raises(PermissionDenied) as refused:
        reject(co, sanctions[1], code)

    assert refused.value.slug == "otp-replayed"
    assert AuditEvent.objects.filter(action="otp.replay_refused", target_id=str(sanctions[1].pk)).exists()
    outbox_relay()  # the warning is sent by the notifications side, from the outbox event the refusal wrote
    warnings = Message.objects.filter(user=co.user, purpose="security_alert")
    assert sorted(warnings.values_list("channel", flat=True)) == ["email", "in_app"]
    assert {m.subject for m in warnings} == {"A one-time code of yours was reused"}
    assert all(f"reuse a one-time code of yours on escalation {sanctions[1].pk}. It was refused." in m.body
               for m in warnings)
    sanctions[1].refresh_from_db()
    assert sanctions[1].status == EscalationStatus.PENDING


def test_a_totp_code_replayed_on_the_same_escalation_is_refused(demo_actor, sanctions):
    co = demo_actor("co")
    code = totp_code(co.user)
    defer(co, sanctions[0], code)

    with pytest.raises(PermissionDenied) as refused:
        reject(co, sanctions[0], code)
    assert refused.value.slug == "otp-replayed"


def test_a_wrong_code_is_refused_counted_and_audited_and_consumes_nothing(demo_actor, sanctions):
    co = demo_actor("co")
    right = totp_code(co.user)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    with pytest.raises(PermissionDenied) as refused:
        reject(co, sanctions[0], wrong)

    assert refused.value.slug == "otp-invalid"
    assert StepUpState.objects.get(user=co.user).failures == 1
    assert AuditEvent.objects.filter(action="otp.failed", actor_label="co").count() == 1
    assert not Decision.objects.exists()
    assert reject(co, sanctions[0], right).status == EscalationStatus.REJECTED


def test_a_decision_refused_for_another_reason_does_not_spend_the_code(demo_actor, vendor, sanctions):
    co = demo_actor("co")
    code = totp_code(co.user)

    with pytest.raises(ValidationFailed):
        escalation_decide(actor=co, escalation=sanctions[0], decision="approve", justification=" ", otp=code)

    assert reject(co, sanctions[0], code).status == EscalationStatus.REJECTED


def test_five_wrong_codes_lock_the_person_out_for_fifteen_minutes(demo_actor, sanctions):
    co = demo_actor("co")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(4):
            with pytest.raises(PermissionDenied):
                reject(co, sanctions[0], "000000" if totp_code(co.user) != "000000" else "111111")
        with pytest.raises(TooManyRequests) as locked:
            reject(co, sanctions[0], "000000" if totp_code(co.user) != "000000" else "111111")
        assert locked.value.headers["Retry-After"] == "900"

        # Even the right code is refused while locked out.
        with pytest.raises(TooManyRequests):
            reject(co, sanctions[0], totp_code(co.user))
    assert AuditEvent.objects.filter(action="otp.locked_out").count() == 1

    with time_machine.travel(start + timedelta(minutes=14), tick=False), pytest.raises(TooManyRequests) as still:
        reject(co, sanctions[0], totp_code(co.user))
    assert 0 < int(still.value.headers["Retry-After"]) <= 60

    with time_machine.travel(start + timedelta(minutes=15, seconds=1), tick=False):
        assert reject(co, sanctions[0], totp_code(co.user)).status == EscalationStatus.REJECTED


def test_wrong_codes_spread_over_more_than_fifteen_minutes_do_not_lock(demo_actor, sanctions):
    co = demo_actor("co")
    start = timezone.now()
    for minute in (0, 5, 10, 14, 16):
        with time_machine.travel(start + timedelta(minutes=minute), tick=False), pytest.raises(PermissionDenied):
            reject(co, sanctions[0], "000000" if totp_code(co.user) != "000000" else "111111")

    assert StepUpState.objects.get(user=co.user).locked_until is None


def challenge_for(user: User, escalation, *, tenant_id: int) -> str:
    _, code = challenge_create(user=user, tenant_id=tenant_id, subject=stepup_subject(escalation), channel="email")
    return code


def test_a_challenge_code_works_once(demo, demo_actor, sanctions):
    co = demo_actor("co")
    code = challenge_for(co.user, sanctions[0], tenant_id=demo["tenant_obj"].pk)

    defer(co, sanctions[0], code)
    with pytest.raises(PermissionDenied) as refused:
        reject(co, sanctions[0], code)
    assert refused.value.slug == "otp-replayed"


def test_a_challenge_code_is_bound_to_its_person(demo, demo_actor, sanctions):
    code = challenge_for(User.objects.get(username="co"), sanctions[0], tenant_id=demo["tenant_obj"].pk)

    with pytest.raises(PermissionDenied):
        reject(demo_actor("co2"), sanctions[0], code)


def test_a_challenge_code_is_bound_to_its_escalation(demo, demo_actor, sanctions):
    co = demo_actor("co")
    code = challenge_for(co.user, sanctions[0], tenant_id=demo["tenant_obj"].pk)

    with pytest.raises(PermissionDenied):
        reject(co, sanctions[1], code)


def test_a_challenge_code_expires_after_five_minutes(demo, demo_actor, sanctions):
    co = demo_actor("co")
    code = challenge_for(co.user, sanctions[0], tenant_id=demo["tenant_obj"].pk)

    with time_machine.travel(timezone.now() + timedelta(minutes=5, seconds=1)), pytest.raises(PermissionDenied):
        reject(co, sanctions[0], code)


def test_a_challenge_code_is_void_once_the_escalation_changed(demo, demo_actor, vendor):
    case = escalation_create(actor=vendor, type="HIGH_RISK_CDD", reason="PEP", source=SourceRef("kyc", "customer", "C1"))
    sm = demo_actor("sm")
    code = challenge_for(sm.user, case, tenant_id=demo["tenant_obj"].pk)  # asked for at stage 0
    co = demo_actor("co")
    escalation_decide(actor=co, escalation=case, decision="approve", justification="Fine", otp=totp_code(co.user))

    with pytest.raises(PermissionDenied):  # now at stage 1: the content the code was bound to has changed
        escalation_decide(actor=sm, escalation=case, decision="approve", justification="Fine", otp=code)


def test_challenge_codes_are_hashed_at_rest(demo, sanctions):
    code = challenge_for(User.objects.get(username="co"), sanctions[0], tenant_id=demo["tenant_obj"].pk)

    challenge = OtpChallenge.objects.get()
    assert code not in challenge.code_digest
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_otpchallenge")
        assert code not in repr(cursor.fetchall())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_requests_with_one_code_at_once_succeed_at_most_once(demo, demo_actor, sanctions):
    co = demo_actor("co")
    code = totp_code(co.user)

    results = run_at_once([lambda e=e: reject(Actor(tenant=demo["tenant_obj"], user=co.user), e.pk, code)
                           for e in sanctions])

    assert sum(not isinstance(r, Exception) for r in results) == 1
    refused = next(r for r in results if isinstance(r, Exception))
    assert isinstance(refused, PermissionDenied) and refused.slug == "otp-replayed"
    assert Decision.objects.count() == 1


def test_the_replay_warning_is_an_internal_event_that_no_webhook_hears(demo_actor, sanctions):
    co = demo_actor("co")
    WebhookEndpoint.objects.create(tenant=co.tenant, url="https://hooks.example.com/all", event_types=[])
    code = totp_code(co.user)
    reject(co, sanctions[0], code)
    with pytest.raises(PermissionDenied):
        reject(co, sanctions[1], code)

    event = OutboxEvent.objects.get(type="stepup.code_replayed")
    assert (event.aggregate_type, event.aggregate_id) == ("user", str(co.user.pk))
    assert event.data == {"user_id": co.user.pk, "subject_type": "escalation", "subject_id": str(sanctions[1].pk)}
    outbox_relay()
    assert not Delivery.objects.filter(event=event, kind=Delivery.Kind.WEBHOOK).exists()
    assert Delivery.objects.filter(kind=Delivery.Kind.WEBHOOK).exists()  # the endpoint hears the cases' events
