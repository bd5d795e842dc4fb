"""Email through a real SMTP receiver, SMS through the Twilio API on a local receiver, the in-app inbox."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from escalations.models import Policy
from escalations.services import Money, SourceRef, escalation_create, escalation_decide
from notifications.deliveries.attempts import backoff_seconds
from notifications.messages import message_send
from notifications.models import Channel, Delivery, DeliveryStatus, Message
from tests.conftest import totp_code

from .conftest import deliver, email_part, pending, relay

pytestmark = pytest.mark.django_db


def big_order(vendor, **kwargs):
    return escalation_create(actor=vendor, reason="Large order", amount=Money(250_000_000, "NGN"),
                             source=SourceRef("shop", "order", "ORD-5"), requested_by="buyer@shop.example", **kwargs)


def client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def twilio(settings, http_receiver):
    settings.SMS_PROVIDER = "twilio"
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC" + "1" * 32, "token"
    settings.TWILIO_FROM_NUMBER = "+2348000000000"
    settings.TWILIO_BASE_URL = http_receiver.url.rsplit("/", 1)[0]
    http_receiver.default_status = 201
    http_receiver.response_body = lambda got: json.dumps({
        "sid": "SM" + "a" * 32, "status": "queued", "price": "-0.04500", "price_unit": "USD",
        "to": parse_qs(got.body.decode())["To"][0], "body": "..."}).encode()
    return http_receiver


def test_an_email_goes_through_a_real_smtp_server_and_its_message_id_is_recorded(demo, smtp_receiver):
    ceo = User.objects.get(username="ceo")
    with transaction.atomic():
        message = message_send(tenant_id=demo["tenant_obj"].pk, channel="email", subject="Hello", body="Body text",
                               purpose="test", to_user_id=ceo.pk)

    assert deliver(message.delivery) == "delivered"

    (recipients, email), = smtp_receiver.messages
    assert recipients == ["ceo@demo.example"] and email["Subject"] == "Hello"
    message.refresh_from_db()
    assert message.sent_at is not None and message.provider == "email:smtp"
    assert message.provider_message_id == email["Message-ID"]


def test_an_sms_goes_through_the_twilio_api_in_e164_and_its_id_and_cost_are_recorded(demo, twilio):
    with transaction.atomic():
        message = message_send(tenant_id=demo["tenant_obj"].pk, channel="sms", subject="", body="Your code is 123456",
                               purpose="otp_challenge", to_address="0803 123 4567")

    assert message.to_address == "+2348031234567"
    assert deliver(message.delivery) == "delivered"

    got = twilio.requests[0]
    assert got.path == f"/2010-04-01/Accounts/AC{'1' * 32}/Messages.json"
    form = parse_qs(got.body.decode())
    assert form["To"] == ["+2348031234567"] and form["From"] == ["+2348000000000"]
    message.refresh_from_db()
    assert message.provider == "sms:twilio" and message.provider_message_id == "SM" + "a" * 32
    assert message.cost == Decimal("0.04500") and message.cost_currency == "USD"


def test_a_refused_sms_is_retried_and_records_the_provider_status(demo, twilio):
    twilio.statuses = [400]
    twilio.response_body = lambda got: b'{"code": 21211, "message": "Invalid To", "status": 400}'
    with transaction.atomic():
        message = message_send(tenant_id=demo["tenant_obj"].pk, channel="sms", subject="", body="hi",
                               purpose="test", to_address="+2348031234567")

    assert deliver(message.delivery) == "retry"
    delivery = Delivery.objects.get(pk=message.delivery.pk)
    assert delivery.last_status_code == 400 and "21211" in delivery.last_error
    assert "2348031234567" not in delivery.last_error


def test_a_one_time_code_is_retried_while_it_is_valid_and_dead_lettered_once_a_retry_would_come_too_late(demo, twilio):
    twilio.statuses = [503, 503]
    now = timezone.now()
    with transaction.atomic():
        message = message_send(tenant_id=demo["tenant_obj"].pk, channel="sms", subject="", body="Your code is 493817",
                               purpose="otp_challenge", to_address="+2348031234567", sensitive=True,
                               valid_until=now + timedelta(seconds=backoff_seconds(1) + 60))

    assert deliver(message.delivery) == "retry"  # the retry still lands inside the code's lifetime
    delivery = Delivery.objects.get(pk=message.delivery.pk)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now)
    Message.objects.filter(pk=message.pk).update(valid_until=timezone.now() + timedelta(seconds=1))

    assert deliver(delivery) == "dead"  # the next retry would come after the code expired
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD and len(twilio.requests) == 2
    assert Message.objects.get(pk=message.pk).body == ""  # the code is discarded with it


def test_a_one_time_code_that_expired_while_queued_is_not_sent(demo, twilio):
    with transaction.atomic():
        message = message_send(tenant_id=demo["tenant_obj"].pk, channel="sms", subject="", body="Your code is 493817",
                               purpose="otp_challenge", to_address="+2348031234567", sensitive=True,
                               valid_until=timezone.now() - timedelta(seconds=1))

    assert deliver(message.delivery) == "dead"

    assert twilio.requests == []
    assert "expired before it could be sent" in Delivery.objects.get(pk=message.delivery.pk).last_error


def test_a_one_time_code_is_encrypted_at_rest_and_discarded_once_delivered(demo, smtp_receiver, caplog):
    ceo = User.objects.get(username="ceo")
    with transaction.atomic():
        message = message_send(tenant_id=demo["tenant_obj"].pk, channel="email", subject="Your code",
                               body="Your TrustGuard code is 493817", purpose="otp_challenge", to_user_id=ceo.pk,
                               sensitive=True)
    stored = Message.objects.get(pk=message.pk)
    assert "493817" not in stored.body and stored.body

    assert deliver(message.delivery) == "delivered"

    assert "493817" in smtp_receiver.messages[0][1].get_payload()
    assert Message.objects.get(pk=message.pk).body == ""
    assert "493817" not in caplog.text


def test_message_send_outside_a_transaction_is_refused(demo, django_db_blocker):
    from django.db import connection

    flag, connection.in_atomic_block = connection.in_atomic_block, False
    try:
        with pytest.raises(RuntimeError):
            message_send(tenant_id=demo["tenant_obj"].pk, channel="email", subject="x", body="y", purpose="t",
                         to_address="a@b.example")
    finally:
        connection.in_atomic_block = flag


# --- who is told what ---------------------------------------------------------------------------------

def test_a_new_escalation_tells_the_assigned_role_by_email_and_in_app_and_the_customer_it_is_under_review(
        demo, vendor, smtp_receiver):
    big_order(vendor, contact={"email": "ada@customer.example", "phone": "08031234567"})
    relay()

    ceo = User.objects.get(username="ceo")
    inbox = Message.objects.get(channel=Channel.IN_APP, user=ceo)
    assert inbox.purpose == "escalation.created" and "ORD-5" in inbox.subject
    for delivery in pending("email"):
        assert deliver(delivery) == "delivered"
    by_rcpt = {rcpts[0]: msg for rcpts, msg in smtp_receiver.messages}
    assert set(by_rcpt) == {"ceo@demo.example", "ada@customer.example"}
    customer = by_rcpt["ada@customer.example"]
    assert customer["Subject"] == "Your order ORD-5 is under review"
    assert "You can expect an answer within 24 hours." in email_part(customer)
    assert "Large order" not in email_part(customer)  # no internal detail to third parties
    assert "Large order" not in email_part(customer, "text/html")
    # The policy's notify_channels are email and in_app: no SMS, not even to the customer's phone.
    assert not Message.objects.filter(channel=Channel.SMS).exists()


def test_a_decision_tells_the_requester_and_the_customer(demo, demo_actor, smtp_receiver):
    co = demo_actor("co")
    ceo = demo_actor("ceo")
    escalation = escalation_create(actor=co, type="HIGH_VALUE", reason="Big one", source=SourceRef("shop", "order", "O-9"),
                                   amount=Money(250_000_000, "NGN"), contact={"email": "ada@customer.example"})
    escalation_decide(actor=ceo, escalation=escalation, decision="reject", justification="Card flagged by bank",
                      otp=totp_code(ceo.user))
    relay()

    rejected = Message.objects.filter(purpose="escalation.rejected")
    assert {(m.channel, m.audience) for m in rejected} == {("email", "requester"), ("in_app", "requester"),
                                                             ("email", "customer")}
    requester_email = rejected.get(channel="email", audience="requester")
    assert requester_email.to_address == "co@demo.example" and "Card flagged by bank" in requester_email.body
    assert "Card flagged" not in rejected.get(audience="customer").body


def test_an_sms_policy_texts_the_customer_in_e164(demo, vendor, twilio):
    Policy.objects.filter(tenant=demo["tenant_obj"], type="HIGH_VALUE").update(notify_channels=["sms"])
    big_order(vendor, contact={"phone": "0803 123 4567"})
    relay()

    texts = Message.objects.filter(channel=Channel.SMS)
    customer = texts.get(audience="customer")
    assert customer.to_address == "+2348031234567" and "under review" in customer.body
    assert texts.filter(audience="approver", to_address="+2348030000006").exists()  # the CEO's phone
    assert all(deliver(d) == "delivered" for d in pending("sms"))
    assert {parse_qs(r.body.decode())["To"][0] for r in twilio.requests} == {"+2348031234567", "+2348030000006"}


def test_a_person_who_turned_email_off_gets_only_the_inbox(demo, vendor):
    ceo = client_for(demo["by_name"]["ceo"]["api_token"])
    assert ceo.put("/api/v1/notifications/preferences", {"email": False}, format="json").json() == {
        "email": False, "sms": True, "in_app": True, "push": True}

    big_order(vendor)
    relay()

    assert set(Message.objects.filter(user__username="ceo").values_list("channel", flat=True)) == {"in_app"}


# --- inbox API --------------------------------------------------------------------------------------------

def test_the_inbox_lists_notifications_with_an_unread_count_and_marks_them_read(demo, vendor):
    big_order(vendor)
    relay()
    ceo = client_for(demo["by_name"]["ceo"]["api_token"])

    inbox = ceo.get("/api/v1/notifications").json()
    assert inbox["unread_count"] == 1
    (item,) = inbox["results"]
    assert item["purpose"] == "escalation.created" and item["read_at"] is None and item["links"]["escalation"]

    read = ceo.post(f"/api/v1/notifications/{item['id']}/read")
    assert read.status_code == 200 and read.json()["read_at"] is not None
    assert ceo.get("/api/v1/notifications").json()["unread_count"] == 0
    assert ceo.get("/api/v1/notifications?unread=1").json()["results"] == []
    assert ceo.post(f"/api/v1/notifications/{item['id']}/read").status_code == 200  # idempotent


def test_the_inbox_refuses_a_misspelt_or_non_boolean_filter_instead_of_listing_everything(demo, vendor):
    from tests.api.conftest import assert_problem

    big_order(vendor)
    relay()
    ceo = client_for(demo["by_name"]["ceo"]["api_token"])
    ceo.post(f"/api/v1/notifications/{ceo.get('/api/v1/notifications').json()['results'][0]['id']}/read")

    assert "unrad" in assert_problem(ceo.get("/api/v1/notifications?unrad=1"), 400)["errors"]
    assert "unread" in assert_problem(ceo.get("/api/v1/notifications?unread=yes please"), 400)["errors"]
    assert ceo.get("/api/v1/notifications?unread=true").json()["results"] == []
    assert len(ceo.get("/api/v1/notifications?unread=0").json()["results"]) == 1


def test_someone_elses_notification_is_not_found_and_an_api_key_has_no_inbox(demo, vendor, make_tenant, make_person):
    big_order(vendor)
    relay()
    item = Message.objects.get(channel=Channel.IN_APP, user__username="ceo")
    sm = client_for(demo["by_name"]["sm"]["api_token"])

    assert sm.post(f"/api/v1/notifications/{item.pk}/read").status_code == 404
    assert sm.post("/api/v1/notifications/not-an-id/read").status_code == 404
    assert sm.get("/api/v1/notifications").json() == {"unread_count": 0, "results": []}
    assert client_for(demo["api_keys"]["vendor"]).get("/api/v1/notifications").status_code == 403
    assert Message.objects.get(pk=item.pk).read_at is None


def test_a_dead_email_shows_in_the_dead_letters_and_the_status_is_recorded(demo, settings, smtp_receiver):
    settings.DELIVERY_MAX_ATTEMPTS = 1
    settings.EMAIL_PORT = 1  # nothing listens: connection refused
    with transaction.atomic():
        message = message_send(tenant_id=demo["tenant_obj"].pk, channel="email", subject="x", body="y", purpose="t",
                               to_address="someone@example.com")

    assert deliver(message.delivery) == "dead"
    delivery = Delivery.objects.get(pk=message.delivery.pk)
    assert delivery.status == DeliveryStatus.DEAD and "someone@example.com" not in delivery.last_error


@pytest.mark.parametrize(("event_type", "subject_start"), [
    ("escalation.reminder", "Reminder:"), ("escalation.escalated", "Escalated to you:"),
    ("escalation.sla_breached", "Overdue:"), ("escalation.resumed", "Back in your queue:"),
])
def test_deadline_events_reach_the_assigned_role(demo, vendor, event_type, subject_start):
    from escalations.services import event_data
    from notifications.outbox.catalogue import event_kind
    from notifications.outbox.emit import event_emit

    escalation = big_order(vendor)
    with transaction.atomic():
        kind = event_kind(event_type)
        assert kind is not None
        event_emit(kind(tenant_id=escalation.tenant_id, aggregate_id=escalation.pk, data=event_data(escalation)))
    relay()

    inbox = Message.objects.get(channel=Channel.IN_APP, user__username="ceo", purpose=event_type)
    assert inbox.subject.startswith(subject_start)
    email = Message.objects.get(channel=Channel.EMAIL, to_address="ceo@demo.example", purpose=event_type)
    assert email.subject.startswith(subject_start) and "ORD-5" in email.subject


def test_an_in_app_message_lands_in_the_inbox_at_once_and_a_person_without_a_phone_cannot_be_texted(demo):
    ceo = User.objects.get(username="ceo")
    User.objects.filter(username="sm").update(phone_number="")
    sm = User.objects.get(username="sm")
    with transaction.atomic():
        note = message_send(tenant_id=demo["tenant_obj"].pk, channel="in_app", subject="Hi", body="Welcome",
                            purpose="welcome", to_user_id=ceo.pk)

    assert note.sent_at is not None
    assert not Delivery.objects.exists()
    inbox = client_for(demo["by_name"]["ceo"]["api_token"]).get("/api/v1/notifications").json()
    assert inbox["unread_count"] == 1 and inbox["results"][0]["body"] == "Welcome"

    from trustguard.errors import ValidationFailed

    with pytest.raises(ValidationFailed), transaction.atomic():
        message_send(tenant_id=demo["tenant_obj"].pk, channel="sms", subject="", body="x", purpose="t",
                     to_user_id=sm.pk)
    with pytest.raises(ValidationFailed), transaction.atomic():
        message_send(tenant_id=demo["tenant_obj"].pk, channel="pigeon", subject="", body="x", purpose="t",
                     to_user_id=sm.pk)


def test_when_the_sweep_re_escalates_an_overdue_case_the_next_role_is_told(demo, vendor):
    from datetime import timedelta

    import time_machine
    from django.core.management import call_command
    from django.utils import timezone

    escalation = escalation_create(actor=vendor, type="SANCTIONS_MATCH", reason="Name match on a watch list",
                                   source=SourceRef("screening", "customer", "C-42"))
    assert escalation.assigned_role == "compliance_officer"

    assert escalation.ack_due_at is not None
    with time_machine.travel(escalation.ack_due_at + timedelta(minutes=1)):
        call_command("run_sweeps")
        assert timezone.now() > escalation.ack_due_at

    told = Message.objects.filter(purpose="escalation.escalated", channel=Channel.IN_APP)
    assert set(told.values_list("user__username", flat=True)) == {"sm", "sm2"}
    assert all(m.subject.startswith("Escalated to you:") for m in told)
