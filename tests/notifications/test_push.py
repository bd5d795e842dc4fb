"""Web Push (#18 item 4): a person enables push on a browser, and the case reaches that browser, encrypted for it.

The push service is a stand-in on 127.0.0.1 (push_standin.py) that checks the VAPID JWT and decrypts the payload
with the subscription's own private key, as a browser would; the subscription is a real P-256 key pair made here.
"""

from __future__ import annotations

import io
import stat

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from escalations.models import Escalation
from escalations.services import Money, SourceRef, escalation_create
from notifications.breakers import breaker_state
from notifications.inbox import channel_preference_set
from notifications.models import Channel, Delivery, DeliveryStatus, Message, PushSubscription
from trustguard.crypto import decrypt
from trustguard.vapid import generate_private_pem, parse_vapid_keys, public_key_text

from .conftest import deliver, pending, relay
from .push_standin import b64url
from .test_channels import client_for

pytestmark = pytest.mark.django_db
SITE = "https://trustguard.example.ng"
NAIRA = "₦2,500,000.00"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE


def big_order(vendor, entity_id: str = "ORD-1") -> Escalation:
    return escalation_create(actor=vendor, reason="Large order from a new customer", amount=Money(250_000_000, "NGN"),
                             source=SourceRef("shop", "order", entity_id), requested_by="buyer@shop.example")


def enable_push(demo, username: str, browser) -> str:
    answer = client_for(demo["by_name"][username]["api_token"]).post(
        "/api/v1/me/push-subscriptions", browser.as_json(), format="json",
        HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36")
    assert answer.status_code == 201, answer.content
    return answer.json()["id"]


def send_all_push() -> list[str]:
    return [deliver(delivery) for delivery in pending("push")]


# --- from the person's side ------------------------------------------------------------------------------------

def test_the_ceo_enables_push_and_a_new_case_arrives_on_her_phone_decrypted_with_the_case_link(
        demo, vendor, push_service):
    phone = push_service.new_browser()
    subscription_id = enable_push(demo, "ceo", phone)

    case = big_order(vendor)
    relay()
    assert send_all_push() == ["delivered"]

    assert push_service.rejected == []
    (push,) = push_service.received
    assert push.token == phone.token
    assert push.payload["url"] == f"{SITE}/e/{case.pk}/"
    assert NAIRA in push.payload["title"] and "ORD-1" in push.payload["title"]
    assert "asks the CEO to approve" in push.payload["body"] and "Large order" in push.payload["body"]
    assert push.payload["tag"] == push.payload["escalation"] == str(case.pk)
    assert "250000000" not in push.payload["title"] + push.payload["body"]  # money as money, never minor units
    assert push.claims["aud"] == push_service.origin and push.claims["sub"] == "mailto:ops@trustguard.example"
    assert push.headers["urgency"] == "high"  # it asks for a decision
    message = Message.objects.get(channel=Channel.PUSH)
    assert message.sent_at is not None and message.user_id == User.objects.get(username="ceo").pk
    assert message.delivery.status == DeliveryStatus.DELIVERED
    assert PushSubscription.objects.get(pk=subscription_id).last_delivered_at is not None


def test_when_stage_one_completes_the_stage_two_approver_gets_a_push_on_her_phone(demo, vendor, demo_actor,
                                                                                  push_service):
    from escalations.services import escalation_decide
    from tests.conftest import totp_code

    phone = push_service.new_browser()
    enable_push(demo, "sm", phone)
    case = escalation_create(actor=vendor, type="HIGH_RISK_CDD", reason="PEP, high-risk country",
                             amount=Money(250_000_000, "NGN"), source=SourceRef("kyc", "customer", "C-7"))
    relay()
    assert not Delivery.objects.filter(kind="push").exists()  # stage 1 is the compliance officers'

    co = demo_actor("co")
    escalation_decide(actor=co, escalation=case, decision="approve", justification="Documents check out",
                      otp=totp_code(co.user))
    relay()

    assert send_all_push() == ["delivered"]
    (push,) = push_service.received
    assert "approved stage 1. Stage 2 needs the Senior manager." in push.payload["body"]
    assert push.payload["url"] == f"{SITE}/e/{case.pk}/"


def test_each_of_a_persons_browsers_gets_its_own_push_and_delivery(demo, vendor, push_service):
    phone, laptop = push_service.new_browser(), push_service.new_browser()
    enable_push(demo, "ceo", phone)
    enable_push(demo, "ceo", laptop)

    big_order(vendor)
    relay()

    assert Delivery.objects.filter(kind="push").count() == 2
    assert send_all_push() == ["delivered", "delivered"]
    assert sorted(p.token for p in push_service.received) == sorted([phone.token, laptop.token])


def test_a_person_who_turned_push_off_gets_no_push(demo, vendor, push_service):
    enable_push(demo, "ceo", push_service.new_browser())
    channel_preference_set(user_id=User.objects.get(username="ceo").pk, channel="push", enabled=False)

    big_order(vendor)
    relay()

    assert not Delivery.objects.filter(kind="push").exists()


def test_the_vapid_public_key_is_the_one_pushes_are_signed_with(demo, push_service):
    answer = client_for(demo["by_name"]["co"]["api_token"]).get("/api/v1/push/vapid-public-key")

    assert answer.status_code == 200
    assert answer.json() == {"public_key": push_service.vapid_public_key}


def test_without_vapid_keys_the_public_key_is_a_404_that_says_push_is_not_set_up(demo, settings):
    settings.VAPID_PRIVATE_KEY = settings.VAPID_PUBLIC_KEY = ""

    answer = client_for(demo["by_name"]["co"]["api_token"]).get("/api/v1/push/vapid-public-key")

    assert answer.status_code == 404
    assert answer["Content-Type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("push-not-configured")


def test_the_same_browser_enabled_twice_is_one_subscription_and_a_second_person_takes_it_over(demo, push_service):
    shared = push_service.new_browser()
    first = enable_push(demo, "ceo", shared)

    assert enable_push(demo, "ceo", shared) == first
    assert enable_push(demo, "co", shared) == first

    assert PushSubscription.objects.get().user.username == "co"


@pytest.mark.parametrize(("change", "field"), [
    (lambda s: s.pop("keys"), "keys"),
    (lambda s: s["keys"].update(p256dh="not-a-key"), "keys.p256dh"),
    (lambda s: s["keys"].update(auth=b64url(b"short")), "keys.auth"),
    (lambda s: s.update(endpoint="ftp://push.example/x"), "endpoint"),
])
def test_a_malformed_subscription_is_a_400_naming_the_field(demo, push_service, change, field):
    body = push_service.new_browser().as_json()
    change(body)

    answer = client_for(demo["by_name"]["ceo"]["api_token"]).post("/api/v1/me/push-subscriptions", body, format="json")

    assert answer.status_code == 400
    problem = answer.json()
    assert field in problem["errors"] or field.split(".")[0] in problem["errors"]
    assert not PushSubscription.objects.exists()


def test_an_endpoint_on_a_private_address_is_refused_when_private_targets_are_not_allowed(demo, push_service, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    body = push_service.new_browser().as_json()
    body["endpoint"] = body["endpoint"].replace("http://", "https://")

    answer = client_for(demo["by_name"]["ceo"]["api_token"]).post("/api/v1/me/push-subscriptions", body, format="json")

    assert answer.status_code == 400
    assert "endpoint" in answer.json()["errors"]


def test_a_person_lists_and_removes_their_own_browser_and_nobody_else_can(demo, push_service, make_tenant,
                                                                          make_person):
    subscription_id = enable_push(demo, "ceo", push_service.new_browser())
    ceo = client_for(demo["by_name"]["ceo"]["api_token"])

    (listed,) = ceo.get("/api/v1/me/push-subscriptions").json()
    assert listed["id"] == subscription_id and listed["device"] == "Chrome on Android"
    assert listed["push_service"] == push_service.origin and "endpoint" not in listed and "keys" not in listed

    co = client_for(demo["by_name"]["co"]["api_token"])
    assert co.delete(f"/api/v1/me/push-subscriptions/{subscription_id}").status_code == 404
    assert co.delete("/api/v1/me/push-subscriptions/not-an-id").status_code == 404
    assert ceo.delete(f"/api/v1/me/push-subscriptions/{subscription_id}").status_code == 204
    assert not PushSubscription.objects.exists()
    actions = list(AuditEvent.objects.filter(target_type="push_subscription").values_list("action", flat=True))
    assert actions == ["push_subscription.added", "push_subscription.removed"]


def test_an_api_key_has_no_push_subscriptions(demo, push_service):
    answer = client_for(demo["api_keys"]["vendor"]).post("/api/v1/me/push-subscriptions",
                                                         push_service.new_browser().as_json(), format="json")

    assert answer.status_code == 403


# --- the push service's answers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [404, 410])
def test_an_expired_subscription_is_removed_and_its_push_dead_lettered_at_once(demo, vendor, push_service, status):
    phone = push_service.new_browser()
    subscription_id = enable_push(demo, "ceo", phone)
    push_service.status_by_token[phone.token] = status
    big_order(vendor)
    relay()

    assert send_all_push() == ["dead"]

    delivery = Delivery.objects.get(kind="push")
    assert delivery.attempts == 1 and f"HTTP {status}" in delivery.last_error
    assert not PushSubscription.objects.filter(pk=subscription_id).exists()
    assert breaker_state(push_service.breaker) == "closed"  # the service answered properly
    removed = AuditEvent.objects.get(action="push_subscription.removed")
    assert removed.actor_label == "system:push" and f"HTTP {status}" in str(removed.details)
    # The next case finds no browser to push to.
    big_order(vendor, "ORD-2")
    relay()
    assert Delivery.objects.filter(kind="push").count() == 1


def test_a_push_to_a_browser_removed_meanwhile_is_dead_lettered_without_a_request(demo, vendor, push_service):
    subscription_id = enable_push(demo, "ceo", push_service.new_browser())
    big_order(vendor)
    relay()
    client_for(demo["by_name"]["ceo"]["api_token"]).delete(f"/api/v1/me/push-subscriptions/{subscription_id}")

    assert send_all_push() == ["dead"]
    assert push_service.received == []
    assert "removed" in Delivery.objects.get(kind="push").last_error


def test_a_failing_push_service_is_retried_then_its_breaker_opens(demo, vendor, push_service, settings):
    settings.BREAKER_FAIL_MAX = 3
    push_service.default_status = 500
    enable_push(demo, "ceo", push_service.new_browser())
    for n in range(4):
        big_order(vendor, f"ORD-{n}")
    relay()

    outcomes = send_all_push()

    assert outcomes == ["retry", "retry", "retry", "circuit-open"]
    assert breaker_state(push_service.breaker) == "open"
    retried = Delivery.objects.filter(kind="push", status=DeliveryStatus.PENDING, attempts=1)
    assert retried.count() == 3 and all("HTTP 500" in d.last_error for d in retried)
    assert Delivery.objects.get(kind="push", attempts=0).status == DeliveryStatus.PENDING  # waits, uncounted


def test_a_push_is_dead_lettered_after_the_last_retry(demo, vendor, push_service, settings):
    settings.DELIVERY_MAX_ATTEMPTS = 2
    push_service.default_status = 503
    enable_push(demo, "ceo", push_service.new_browser())
    big_order(vendor)
    relay()
    (delivery,) = pending("push")

    assert deliver(delivery) == "retry"
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.created_at)
    assert deliver(delivery) == "dead"
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DEAD


# --- storage and keys ---------------------------------------------------------------------------------------------

def test_the_endpoint_and_keys_are_stored_encrypted(demo, push_service):
    phone = push_service.new_browser()
    subscription = PushSubscription.objects.get(pk=enable_push(demo, "ceo", phone))

    assert phone.endpoint not in subscription.subscription_encrypted
    assert phone.as_json()["keys"]["auth"] not in subscription.subscription_encrypted
    assert phone.endpoint in decrypt(subscription.subscription_encrypted)


def test_vapid_keys_are_read_as_pem_or_raw_and_a_wrong_public_key_stops_start_up():
    pem = generate_private_pem()
    keys = parse_vapid_keys(pem)
    assert keys is not None
    raw = b64url(keys.private_key.private_numbers().private_value.to_bytes(32, "big"))

    from_raw = parse_vapid_keys(raw, keys.public_key)

    assert from_raw is not None and from_raw.public_key == keys.public_key
    assert keys.public_key == public_key_text(keys.private_key.public_key())
    assert parse_vapid_keys("") is None
    with pytest.raises(ImproperlyConfigured, match="does not belong"):
        parse_vapid_keys(pem, parse_vapid_keys(generate_private_pem()).public_key)  # type: ignore[union-attr]
    with pytest.raises(ImproperlyConfigured, match="TRUSTGUARD_VAPID_PRIVATE_KEY"):
        parse_vapid_keys("not a key")


def test_seed_demo_writes_a_vapid_key_for_the_demo_when_none_is_set(db, settings, tmp_path):
    settings.DEBUG = True
    settings.VAPID_PRIVATE_KEY = ""
    settings.VAPID_KEY_FILE = tmp_path / "vapid-private.pem"

    call_command("seed_demo", "--json", stdout=io.StringIO())

    assert stat.S_IMODE(settings.VAPID_KEY_FILE.stat().st_mode) == 0o600
    assert parse_vapid_keys(settings.VAPID_KEY_FILE.read_text()) is not None
    assert settings.VAPID_KEY_FILE.read_text() == settings.VAPID_PRIVATE_KEY


# --- the dashboard ----------------------------------------------------------------------------------------------

def test_the_queue_offers_to_enable_notifications_on_this_device(demo, push_service):
    client = Client()
    client.force_login(User.objects.get(username="ceo"))

    page = client.get("/").content.decode()

    assert "Enable notifications on this device" in page
    assert f'data-public-key="{push_service.vapid_public_key}"' in page
    assert 'data-worker="/push-sw.js"' in page


def test_the_service_worker_is_served_from_the_site_root(db):
    answer = Client().get("/push-sw.js")

    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/javascript")
    assert answer["Service-Worker-Allowed"] == "/"
    body = answer.content.decode()
    assert 'addEventListener("push"' in body and 'addEventListener("notificationclick"' in body


def test_the_dashboard_enables_lists_and_removes_a_device(demo, push_service):
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.get(username="ceo"))
    page = client.get("/settings/devices/")
    csrf = page.cookies["csrftoken"].value
    phone = push_service.new_browser()

    assert client.post("/settings/devices/push/", phone.as_json(), content_type="application/json").status_code == 403
    created = client.post("/settings/devices/push/", phone.as_json(), content_type="application/json",
                          HTTP_X_CSRFTOKEN=csrf)
    assert created.status_code == 201
    status = client.post("/settings/devices/push/status/", {"endpoint": phone.endpoint},
                         content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert status.json() == {"registered": True}
    listing = client.get("/settings/devices/").content.decode()
    assert "Devices that get push notifications" in listing and push_service.origin.split("://")[1] in listing

    removed = client.post(f"/settings/devices/{created.json()['id']}/remove/", {"csrfmiddlewaretoken": csrf})

    assert removed.status_code == 302
    assert not PushSubscription.objects.exists()
    status = client.post("/settings/devices/push/status/", {"endpoint": phone.endpoint},
                         content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert status.json() == {"registered": False}


def test_an_operator_sees_a_persons_browsers_in_the_admin_without_their_endpoints_and_removes_one(
        demo, push_service, admin_client):
    phone = push_service.new_browser()
    subscription_id = enable_push(demo, "ceo", phone)

    listing = admin_client.get("/admin/notifications/pushsubscription/").content.decode()
    assert "Chrome on Android" in listing and "ceo" in listing and phone.token not in listing
    page = admin_client.get(f"/admin/notifications/pushsubscription/{subscription_id}/change/").content.decode()
    assert phone.token not in page and phone.as_json()["keys"]["auth"] not in page

    admin_client.post("/admin/notifications/pushsubscription/",
                      {"action": "remove", "_selected_action": [subscription_id]})

    assert not PushSubscription.objects.exists()
    removed = AuditEvent.objects.get(action="push_subscription.removed")
    assert removed.tenant_id is None  # the platform's chain: an operator acted, not a tenant's person


@pytest.mark.postgres  # real concurrent transactions (SQLite's in-memory test database locks whole tables)
@pytest.mark.django_db(transaction=True)
def test_the_same_browser_posting_twice_at_once_gets_one_subscription(demo, push_service):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    phone = push_service.new_browser()
    token = demo["by_name"]["ceo"]["api_token"]

    def post() -> tuple[int, str]:
        try:
            answer = client_for(token).post("/api/v1/me/push-subscriptions", phone.as_json(), format="json")
            return answer.status_code, answer.json().get("id", "")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: post(), range(4)))

    assert {status for status, _ in answers} == {201}
    assert len({subscription_id for _, subscription_id in answers}) == 1
    assert PushSubscription.objects.count() == 1


# --- the browser renews its subscription (the service worker's pushsubscriptionchange) --------------------------

def renew(old_endpoint: object, subscription: object):
    """What static/push-sw.js posts: no session, no CSRF token (a service worker has neither)."""
    return Client(enforce_csrf_checks=True).post("/settings/devices/push/renew/", content_type="application/json",
                                                 data={"old_endpoint": old_endpoint, "subscription": subscription})


def test_a_browser_renews_its_subscription_and_the_next_case_reaches_the_new_one(demo, vendor, push_service):
    old, new = push_service.new_browser(), push_service.new_browser()
    subscription_id = enable_push(demo, "ceo", old)

    answer = renew(old.endpoint, new.as_json())

    assert answer.status_code == 200 and answer.json() == {"renewed": True}
    renewed = PushSubscription.objects.get()
    assert str(renewed.pk) == subscription_id and renewed.device == "Chrome on Android"  # the same device, kept
    assert new.endpoint in decrypt(renewed.subscription_encrypted)
    big_order(vendor)
    relay()
    assert send_all_push() == ["delivered"]
    assert [push.token for push in push_service.received] == [new.token]
    event = AuditEvent.objects.get(action="push_subscription.renewed")
    assert event.tenant_id is None and old.endpoint not in str(event.after) + str(event.details)


def test_renewing_to_a_subscription_the_page_already_enabled_leaves_one_row(demo, push_service):
    old, new = push_service.new_browser(), push_service.new_browser()
    enable_push(demo, "ceo", old)
    kept = enable_push(demo, "ceo", new)

    assert renew(old.endpoint, new.as_json()).status_code == 200

    assert [str(pk) for pk in PushSubscription.objects.values_list("pk", flat=True)] == [kept]


def test_an_unknown_old_endpoint_is_a_404_problem_and_changes_nothing(demo, push_service):
    enable_push(demo, "ceo", push_service.new_browser())
    before = PushSubscription.objects.get().subscription_encrypted

    answer = renew("https://push.example/not-one-of-ours", push_service.new_browser().as_json())

    assert answer.status_code == 404 and answer["Content-Type"] == "application/problem+json"
    assert PushSubscription.objects.get().subscription_encrypted == before


@pytest.mark.parametrize(("old_endpoint", "subscription", "field"), [
    (None, {}, "old_endpoint"),
    ("OLD", {"endpoint": "ftp://push.example/x"}, "endpoint"),
    ("OLD", "not an object", "endpoint"),
])
def test_a_malformed_renewal_is_a_400_naming_the_field(demo, push_service, old_endpoint, subscription, field):
    browser = push_service.new_browser()
    enable_push(demo, "ceo", browser)

    answer = renew(browser.endpoint if old_endpoint == "OLD" else old_endpoint, subscription)

    assert answer.status_code == 400 and answer["Content-Type"] == "application/problem+json"
    assert field in answer.json()["errors"]
    assert browser.endpoint in decrypt(PushSubscription.objects.get().subscription_encrypted)


def test_a_renewal_that_is_not_json_is_a_400_problem(db):
    answer = Client().post("/settings/devices/push/renew/", data="[", content_type="application/json")

    assert answer.status_code == 400 and answer["Content-Type"] == "application/problem+json"
