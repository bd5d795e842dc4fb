"""A person's notification settings page (channels, quiet hours with the critical override), the tenant's defaults in
the admin, and what the outbox does with them: an email that would arrive in quiet hours waits until they end (it is
not dropped), a critical one goes through. The email arrives at a real SMTP server on 127.0.0.1.
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from accounts.actors import Actor
from accounts.models import Tenant, User
from audit.models import AuditEvent
from escalations.services import Money, SourceRef, escalation_create
from notifications.deliveries.attempts import deliveries_deliver_due
from notifications.models import (
    ChannelPreference,
    Delivery,
    DeliveryStatus,
    Message,
    PersonNotificationSettings,
    TenantNotificationDefaults,
)
from tests.dashboard.conftest import user
from tests.dashboard.test_browser import browser, open_as  # noqa: F401  (fixtures)
from tests.factories import ApiKeyFactory, shop_whose_large_orders_reach_its_ceo
from tests.notifications.conftest import relay, smtp_receiver  # noqa: F401  (smtp_receiver is a fixture)

pytestmark = pytest.mark.django_db
LAGOS = ZoneInfo("Africa/Lagos")
# 23:00 in Lagos, a Tuesday: inside 22:00-07:00 quiet hours, which end at 07:00 on Wednesday.
LATE = datetime(2026, 12, 8, 23, 0, tzinfo=LAGOS)
MORNING = datetime(2026, 12, 9, 7, 0, tzinfo=LAGOS)
QUIET = {
    "quiet_hours": "custom",
    "quiet_start": "22:00",
    "quiet_end": "07:00",
    "critical_override": "on",
    "channel_email": "on",
}


@pytest.fixture
def tenant() -> Tenant:
    """A tenant whose HIGH_VALUE orders go to its CEO, ceo@demo.example (the factories, not the whole demo)."""
    return shop_whose_large_orders_reach_its_ceo(slug="demo", time_zone="Africa/Lagos")  # quiet hours: its zone


@pytest.fixture
def vendor(tenant: Tenant) -> Actor:
    return Actor(tenant=tenant, api_key=ApiKeyFactory.create(tenant=tenant, name="vendor"))


@pytest.fixture
def signed_in(tenant: Tenant, sign_in):
    return lambda username: sign_in(User.objects.get(username=username))


def order(vendor, entity_id: str = "ORD-Q1", urgency: str = "normal"):
    return escalation_create(
        actor=vendor,
        type="HIGH_VALUE",
        reason="Large order",
        amount=Money(250_000_000, "NGN"),
        urgency=urgency,
        source=SourceRef("shop", "order", entity_id),
        requested_by="buyer@shop.example",
    )


def ceo_email_delivery() -> Delivery:
    return Delivery.objects.select_related("message").get(kind="email", message__user__username="ceo")


# --- the page ----------------------------------------------------------------------------------------------------------


def test_a_person_sets_quiet_hours_and_turns_off_sms(signed_in) -> None:
    client = signed_in("ceo")
    page = client.get("/settings/notifications/")
    assert page.status_code == 200 and "Quiet hours" in page.content.decode()
    assert "Quiet hours are in your time zone, Africa/Lagos" in page.content.decode()  # the organisation's: she chose none

    response = client.post("/settings/notifications/", QUIET)

    assert response.status_code == 302 and response["Location"] == "/settings/notifications/"
    saved = PersonNotificationSettings.objects.get(user=user("ceo"))
    assert (saved.quiet_hours, saved.quiet_start, saved.quiet_end, saved.critical_override) == (
        "custom",
        time(22),
        time(7),
        True,
    )
    assert ChannelPreference.objects.get(user=user("ceo"), channel="sms").enabled is False
    assert not ChannelPreference.objects.filter(user=user("ceo"), channel="email").exists()  # unchanged: still default
    page = client.get("/settings/notifications/").content.decode()
    assert 'value="22:00"' in page
    audit = AuditEvent.objects.filter(action="notification_settings.changed").latest("id")
    assert audit.actor_label == "ceo" and (audit.after or {})["quiet_end"] == "07:00"


def test_own_quiet_hours_without_times_are_refused_next_to_the_field_and_nothing_is_saved(signed_in) -> None:
    response = signed_in("ceo").post("/settings/notifications/", {**QUIET, "quiet_end": ""})

    assert response.status_code == 400
    assert 'id="e-end"' in response.content.decode()
    assert not PersonNotificationSettings.objects.filter(user=user("ceo")).exists()


def test_the_page_needs_a_signed_in_person() -> None:
    response = Client().get("/settings/notifications/")

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- what the outbox does with it --------------------------------------------------------------------------------------


def test_an_email_due_in_quiet_hours_waits_until_they_end_and_then_arrives(signed_in, vendor, smtp_receiver) -> None:  # noqa: F811
    signed_in("ceo").post("/settings/notifications/", QUIET)

    with time_machine.travel(LATE, tick=False):
        order(vendor)
        relay()
        delivery = ceo_email_delivery()
        assert delivery.next_attempt_at == MORNING  # deferred, not dropped
        assert Message.objects.filter(user=user("ceo"), channel="in_app").exists()  # the inbox item is there at once
        deliveries_deliver_due()
        assert smtp_receiver.messages == []

    with time_machine.travel(MORNING, tick=False):
        deliveries_deliver_due()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert [rcpts for rcpts, _ in smtp_receiver.messages] == [["ceo@demo.example"]]


def test_a_critical_escalation_goes_through_quiet_hours(signed_in, vendor, smtp_receiver) -> None:  # noqa: F811
    signed_in("ceo").post("/settings/notifications/", QUIET)

    with time_machine.travel(LATE, tick=False):
        order(vendor, urgency="critical")
        relay()
        assert ceo_email_delivery().next_attempt_at == LATE
        deliveries_deliver_due()

    assert [rcpts for rcpts, _ in smtp_receiver.messages] == [["ceo@demo.example"]]


def test_a_person_who_lets_nothing_through_has_critical_ones_wait_too(signed_in, vendor) -> None:
    signed_in("ceo").post("/settings/notifications/", {**QUIET, "critical_override": ""})

    with time_machine.travel(LATE, tick=False):
        order(vendor, urgency="critical")
        relay()

    assert ceo_email_delivery().next_attempt_at == MORNING


def test_the_tenant_s_default_quiet_hours_apply_to_people_who_have_not_chosen(tenant, vendor) -> None:
    TenantNotificationDefaults.objects.create(
        tenant=tenant, quiet_hours_enabled=True, quiet_start=time(22), quiet_end=time(7)
    )

    with time_machine.travel(LATE, tick=False):
        order(vendor)
        relay()

    assert ceo_email_delivery().next_attempt_at == MORNING


def test_a_person_who_turned_quiet_hours_off_is_reached_at_once_despite_the_default(tenant, signed_in, vendor) -> None:
    TenantNotificationDefaults.objects.create(
        tenant=tenant, quiet_hours_enabled=True, quiet_start=time(22), quiet_end=time(7)
    )
    signed_in("ceo").post("/settings/notifications/", {"quiet_hours": "off", "channel_email": "on"})

    with time_machine.travel(LATE, tick=False):
        order(vendor)
        relay()

    assert ceo_email_delivery().next_attempt_at == LATE


def test_a_channel_the_tenant_turns_off_by_default_stays_on_for_a_person_who_chose_it(tenant, signed_in, vendor) -> None:
    TenantNotificationDefaults.objects.create(tenant=tenant, channels_off=["email"])
    page = signed_in("ceo").get("/settings/notifications/").content.decode()
    assert 'name="channel_email" checked' not in page  # shown as the default has it: off

    order(vendor, "ORD-Q2")
    relay()
    assert not Delivery.objects.filter(kind="email", message__user__username="ceo").exists()

    signed_in("ceo").post("/settings/notifications/", {"quiet_hours": "default", "channel_email": "on"})
    order(vendor, "ORD-Q3")
    relay()
    assert Delivery.objects.filter(kind="email", message__user__username="ceo").count() == 1


# --- the admin ---------------------------------------------------------------------------------------------------------


def test_an_operator_sets_the_tenant_s_default_quiet_hours_in_the_admin(tenant, admin_client) -> None:
    response = admin_client.post(
        "/admin/notifications/tenantnotificationdefaults/add/",
        {
            "tenant": tenant.pk,
            "quiet_hours_enabled": "on",
            "quiet_start": "21:30",
            "quiet_end": "06:30",
            "critical_override": "on",
            "channels_off": ["sms"],
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    saved = TenantNotificationDefaults.objects.get(tenant=tenant)
    assert (saved.quiet_start, saved.quiet_end, saved.channels_off) == (time(21, 30), time(6, 30), ["sms"])
    assert AuditEvent.objects.filter(action="notification_defaults.changed").exists()


def test_the_admin_refuses_quiet_hours_without_an_end(tenant, admin_client) -> None:
    response = admin_client.post(
        "/admin/notifications/tenantnotificationdefaults/add/",
        {
            "tenant": tenant.pk,
            "quiet_hours_enabled": "on",
            "quiet_start": "21:30",
            "quiet_end": "",
        },
    )

    assert response.status_code == 200 and "Quiet hours need a start and an end." in response.content.decode()
    assert not TenantNotificationDefaults.objects.exists()


# --- in the browser ----------------------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_ceo_sets_her_quiet_hours_from_the_account_menu(open_as) -> None:  # noqa: F811
    from playwright.sync_api import expect

    from tests.dashboard.test_browser import shoot

    page = open_as("ceo")
    page.click(".account summary")
    page.click("text=Notification settings")
    page.wait_for_url("**/settings/notifications/")
    expect(page.locator("#q-start")).to_be_hidden()  # only "my own quiet hours" has times
    page.check("#q-custom", force=True)
    expect(page.locator("#q-start")).to_be_visible()
    page.fill("#q-start", "22:00")
    page.fill("#q-end", "07:00")
    page.uncheck("#c-sms")
    page.click("text=Save settings")

    expect(page.locator(".messages")).to_contain_text("Your notification settings are saved.")
    expect(page.locator("#q-start")).to_have_value("22:00")
    shoot(page, "notification-settings")
    saved = PersonNotificationSettings.objects.get(user=user("ceo"))
    assert (saved.quiet_start, saved.quiet_end) == (time(22), time(7))


def test_the_admin_lists_and_edits_the_tenant_s_defaults(tenant, admin_client) -> None:
    defaults = TenantNotificationDefaults.objects.create(tenant=tenant)

    assert admin_client.get("/admin/notifications/tenantnotificationdefaults/").status_code == 200
    page = admin_client.get(f"/admin/notifications/tenantnotificationdefaults/{defaults.pk}/change/")
    assert page.status_code == 200 and 'name="quiet_start"' in page.content.decode()
