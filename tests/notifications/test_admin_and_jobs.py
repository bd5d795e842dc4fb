"""Operators: the admin pages, the replay action, the periodic jobs and the OpenAPI schema."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from accounts.models import User
from notifications.messages import message_send
from notifications.models import Delivery, DeliveryStatus, Message, WebhookEndpoint
from trustguard.periodic import periodic_jobs

from .conftest import deliver

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_() -> Client:
    admin = User.objects.create_superuser(username="root", email="root@example.com", password="x" * 12)
    client = Client()
    client.force_login(admin)
    return client


def dead_email(demo, settings) -> Delivery:
    settings.DELIVERY_MAX_ATTEMPTS = 1
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1
    with transaction.atomic():
        message = message_send(tenant_id=demo["tenant_obj"].pk, channel="email", subject="s", body="b", purpose="t",
                               to_address="x@example.com")
    assert deliver(message.delivery) == "dead"
    return Delivery.objects.get(pk=message.delivery.pk)


def test_an_operator_finds_a_dead_letter_in_the_admin_and_replays_it(demo, settings, admin_client_):
    delivery = dead_email(demo, settings)

    listing = admin_client_.get("/admin/notifications/delivery/?dead=1")
    assert listing.status_code == 200 and f">{delivery.pk}<" in listing.content.decode()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = admin_client_.post("/admin/notifications/delivery/",
                                  {"action": "replay", "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.replays == 1
    assert deliver(delivery) == "delivered"


def test_an_operator_adds_a_webhook_in_the_admin_and_sees_the_secret_once(demo, admin_client_, http_receiver):
    response = admin_client_.post("/admin/notifications/webhookendpoint/add/", {
        "tenant": demo["tenant_obj"].pk, "url": http_receiver.url, "event_types": "escalation.approved, escalation.*",
        "description": "shop"}, follow=True)

    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["escalation.*", "escalation.approved"]
    assert "whsec_" in response.content.decode()
    detail = admin_client_.get(f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert "whsec_" not in detail.replace(endpoint.secret_prefix, "")


def test_the_admin_lists_render(demo, settings, admin_client_):
    dead_email(demo, settings)
    for model in ("delivery", "message", "outboxevent", "webhookendpoint"):
        assert admin_client_.get(f"/admin/notifications/{model}/").status_code == 200
    message = Message.objects.get()
    assert admin_client_.get(f"/admin/notifications/message/{message.pk}/change/").status_code == 200


def test_a_sensitive_message_body_is_not_shown_in_the_admin(demo, admin_client_):
    with transaction.atomic():
        message = message_send(tenant_id=demo["tenant_obj"].pk, channel="email", subject="code", body="code 771234",
                               purpose="otp_challenge", to_address="x@example.com", sensitive=True)

    page = admin_client_.get(f"/admin/notifications/message/{message.pk}/change/").content.decode()
    assert "771234" not in page and "sensitive: not shown" in page


def test_the_outbox_jobs_are_registered_and_run_by_run_sweeps(demo, vendor, capsys):
    from escalations.services import Money, SourceRef, escalation_create

    names = set(periodic_jobs())
    assert {"notifications.relay_outbox", "notifications.deliver_due"} <= names
    escalation_create(actor=vendor, reason="Large", amount=Money(250_000_000, "NGN"),
                      source=SourceRef("shop", "order", "O-1"))

    call_command("run_sweeps", "--only", "notifications.relay_outbox", "--only", "notifications.deliver_due")

    out = capsys.readouterr().out
    assert "notifications.relay_outbox: relayed 1 events" in out
    assert "notifications.deliver_due: 1 delivered" in out  # the CEO's email (locmem backend)


def test_the_openapi_schema_documents_the_webhook_and_inbox_endpoints(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(target), "--validate")
    schema = target.read_text()
    for path in ("/api/v1/webhooks:", "/api/v1/webhooks/{endpoint_id}:", "/api/v1/notifications:",
                 "/api/v1/notifications/{message_id}/read:"):
        assert path in schema
