"""Signed webhooks: signatures, retries with backoff, dead letters and replay, SSRF guard, order."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from escalations.services import SourceRef, escalation_create, escalation_decide
from notifications.actors import OperatorActor
from notifications.deliveries.webhooks import webhook_endpoint_create, webhook_endpoint_rotate_secret
from notifications.models import Delivery, DeliveryStatus, OutboxEvent, WebhookEndpoint
from tests.conftest import totp_code

from .conftest import deliver, pending, relay

pytestmark = pytest.mark.django_db
ORDER = SourceRef(system="shop", entity_type="order", entity_id="ORD-77")
SYSTEM = OperatorActor.system("test")


def big_order(vendor, entity_id="ORD-77"):
    from escalations.services import Money

    return escalation_create(actor=vendor, reason="Large order", amount=Money(250_000_000, "NGN"),
                             source=SourceRef("shop", "order", entity_id), requested_by="buyer@shop.example")


def endpoint_for(demo, receiver, **kwargs):
    return webhook_endpoint_create(tenant_id=demo["tenant_obj"].pk, actor=SYSTEM, url=receiver.url, **kwargs)


def test_a_webhook_carries_a_standard_webhooks_signature_that_the_library_verifies(demo, vendor, http_receiver):
    _, secret = endpoint_for(demo, http_receiver)
    escalation = big_order(vendor)
    relay()

    assert deliver(pending()[0]) == "delivered"

    got = http_receiver.requests[0]
    envelope = Webhook(secret).verify(got.body, got.headers)
    event = OutboxEvent.objects.get(aggregate_id=escalation.pk, type="escalation.created")
    assert got.headers["webhook-id"] == str(event.event_id) == envelope["id"]
    assert envelope["type"] == "escalation.created" and envelope["version"] == 1 and envelope["tenant"] == "demo"
    assert envelope["data"]["id"] == str(escalation.pk)
    assert "contact" not in envelope["data"] and "payload" not in envelope["data"]
    with pytest.raises(Exception):
        Webhook("whsec_" + "A" * 44).verify(got.body, got.headers)


def test_after_a_rotation_both_the_new_and_the_old_secret_verify(demo, vendor, http_receiver):
    endpoint, old_secret = endpoint_for(demo, http_receiver)
    _, new_secret = webhook_endpoint_rotate_secret(tenant_id=demo["tenant_obj"].pk, actor=SYSTEM, endpoint_id=endpoint.pk)
    big_order(vendor)
    relay()
    deliver(pending()[0])

    got = http_receiver.requests[0]
    assert new_secret != old_secret
    Webhook(new_secret).verify(got.body, got.headers)
    Webhook(old_secret).verify(got.body, got.headers)


def test_a_failing_receiver_is_retried_with_growing_backoff_until_it_answers(demo, vendor, http_receiver, settings):
    endpoint_for(demo, http_receiver)
    http_receiver.statuses = [500, 503]
    big_order(vendor)
    relay()
    delivery = pending()[0]

    start = timezone.now()
    assert deliver(delivery) == "retry"
    delivery.refresh_from_db()
    first_wait = (delivery.next_attempt_at - start).total_seconds()
    assert 5 - 1 <= first_wait <= 10 + 1  # base 10 s with jitter: [5, 10]
    assert delivery.attempts == 1 and delivery.last_status_code == 500 and "HTTP 500" in delivery.last_error
    assert deliver(delivery) == "not-due"

    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1)):
        second_start = timezone.now()
        assert deliver(delivery) == "retry"
        delivery.refresh_from_db()
        second_wait = (delivery.next_attempt_at - second_start).total_seconds()
        assert 10 - 1 <= second_wait <= 20 + 1  # doubled: [10, 20]

    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1)):
        assert deliver(delivery) == "delivered"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 3
    # The same event id every time, so the receiver can de-duplicate.
    assert len({r.headers["webhook-id"] for r in http_receiver.requests}) == 1
    assert len(http_receiver.requests) == 3


def test_after_the_last_attempt_a_delivery_is_dead_lettered_and_a_replay_delivers_it(demo, vendor, http_receiver,
                                                                                        settings):
    settings.DELIVERY_MAX_ATTEMPTS = 3
    endpoint_for(demo, http_receiver)
    http_receiver.default_status = 500
    big_order(vendor)
    relay()
    delivery = pending()[0]

    outcomes = []
    for _ in range(3):
        with time_machine.travel(max(timezone.now(), Delivery.objects.get(pk=delivery.pk).next_attempt_at)
                                 + timedelta(seconds=1)):
            outcomes.append(deliver(delivery))
    delivery.refresh_from_db()
    assert outcomes == ["retry", "retry", "dead"]
    assert delivery.status == DeliveryStatus.DEAD and delivery.dead_at is not None
    assert deliver(delivery) == "already-dead"

    http_receiver.default_status = 200
    call_command("replay_dead_letters", "--all")
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0 and delivery.replays == 1

    assert deliver(delivery) == "delivered"
    assert len(http_receiver.requests) == 4


def test_deliveries_of_one_escalation_reach_a_receiver_in_event_order(demo, vendor, demo_actor, http_receiver):
    endpoint_for(demo, http_receiver)
    escalation = big_order(vendor)
    escalation_decide(actor=demo_actor("ceo"), escalation=escalation, decision="approve",
                      justification="Known customer", otp=totp_code(demo_actor("ceo").user))
    relay()
    created, approved = pending()
    http_receiver.statuses = [500]

    assert deliver(created) == "retry"
    assert deliver(approved) == "waiting-for-earlier-event"  # the earlier event is still pending

    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert deliver(approved) == "waiting-for-earlier-event"
        assert deliver(created) == "delivered"
        assert deliver(approved) == "delivered"
    assert [r.json()["type"] for r in http_receiver.requests] == [
        "escalation.created", "escalation.created", "escalation.approved"]


def test_an_endpoint_only_gets_the_event_types_it_asked_for(demo, vendor, demo_actor, http_receiver):
    endpoint_for(demo, http_receiver, event_types=["escalation.approved", "escalation.rejected"])
    escalation = big_order(vendor)
    escalation_decide(actor=demo_actor("ceo"), escalation=escalation, decision="approve",
                      justification="ok", otp=totp_code(demo_actor("ceo").user))
    relay()

    assert list(Delivery.objects.filter(kind="webhook").values_list("event__type", flat=True)) == [
        "escalation.approved"]
    assert relay() == 0 and Delivery.objects.filter(kind="webhook").count() == 1  # fanned out once


def test_a_target_that_turned_private_is_refused_at_delivery_time(demo, vendor, http_receiver, settings):
    endpoint_for(demo, http_receiver)  # allowed while private targets were allowed
    big_order(vendor)
    relay()
    settings.WEBHOOK_ALLOW_PRIVATE = False  # e.g. DNS now points the host at 127.0.0.1

    assert deliver(pending()[0]) == "retry"
    assert http_receiver.requests == []
    assert "target refused" in pending()[0].last_error


# --- API --------------------------------------------------------------------------------------------

def client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def ops(demo) -> APIClient:
    return client_for(demo["by_name"]["ops"]["api_token"])


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/hook", "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data", "http://[::1]/hook", "http://0.0.0.0/hook", "ftp://example.com/x",
    "http://user:pw@example.com/hook", "not a url",
])
def test_webhook_targets_on_loopback_or_private_networks_are_refused(ops, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE = False

    response = ops.post("/api/v1/webhooks", {"url": url}, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert "url" in response.json()["errors"]
    assert not WebhookEndpoint.objects.exists()


def test_an_operator_registers_lists_and_deletes_a_webhook_and_sees_the_secret_once(ops, http_receiver):
    created = ops.post("/api/v1/webhooks", {"url": http_receiver.url, "event_types": ["escalation.*"]}, format="json")

    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["escalation.*"]
    assert body["secret"] not in WebhookEndpoint.objects.get().secret_encrypted  # encrypted at rest
    listed = ops.get("/api/v1/webhooks").json()
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
    assert "secret" not in ops.get(f"/api/v1/webhooks/{body['id']}").json()

    assert ops.delete(f"/api/v1/webhooks/{body['id']}").status_code == 204
    assert ops.get(f"/api/v1/webhooks/{body['id']}").status_code == 404
    assert ops.get("/api/v1/webhooks").json() == []


def test_webhooks_of_another_tenant_are_not_found(ops, http_receiver, make_tenant):
    other = make_tenant("other")
    foreign, _ = webhook_endpoint_create(tenant_id=other.pk, actor=SYSTEM, url=http_receiver.url)

    assert ops.get(f"/api/v1/webhooks/{foreign.pk}").status_code == 404
    assert ops.delete(f"/api/v1/webhooks/{foreign.pk}").status_code == 404
    assert ops.post(f"/api/v1/webhooks/{foreign.pk}/rotate-secret").status_code == 404
    assert ops.get("/api/v1/webhooks/not-a-uuid").status_code == 404
    assert WebhookEndpoint.objects.get(pk=foreign.pk).is_active


def test_managing_webhooks_needs_policy_manage(demo, http_receiver):
    ceo = client_for(demo["by_name"]["ceo"]["api_token"])
    vendor_key = client_for(demo["api_keys"]["vendor"])

    assert ceo.post("/api/v1/webhooks", {"url": http_receiver.url}, format="json").status_code == 403
    assert vendor_key.get("/api/v1/webhooks").status_code == 403
    assert APIClient().get("/api/v1/webhooks").status_code == 401


def test_bad_event_type_filters_are_a_400(ops, http_receiver):
    response = ops.post("/api/v1/webhooks", {"url": http_receiver.url, "event_types": ["DROP TABLE"]}, format="json")

    assert response.status_code == 400 and "event_types" in response.json()["errors"]


def test_a_filter_names_event_types_of_the_catalogue_or_a_prefix_of_them(ops, http_receiver):
    def subscribe(types: list[str]) -> int:
        return ops.post("/api/v1/webhooks", {"url": http_receiver.url, "event_types": types},
                        format="json").status_code

    assert subscribe(["escalation.approved", "escalation.sla_breached"]) == 201
    assert subscribe(["escalation.*"]) == 201
    assert subscribe(["escalation.approvd"]) == 400  # a typo would never hear anything
    assert subscribe(["order.*"]) == 400
