"""Times in the zone of whoever reads them: a person's own time zone (language page), else their organisation's
(the tenant's, set in the admin), else the site's (TIME_ZONE, Africa/Lagos here). Pages, emails, quiet hours and the
dates of an absence all follow the one rule, accounts.selectors.zone_of."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.delegations import DelegationInput, delegation_create
from accounts.models import User
from audit.models import AuditEvent
from notifications.models import Delivery, Message, TenantNotificationDefaults
from tests.dashboard.conftest import user
from tests.dashboard.test_browser import browser, open_as  # noqa: F401  (fixtures)
from tests.notifications.conftest import relay

pytestmark = pytest.mark.django_db
LONDON, NEW_YORK = ZoneInfo("Europe/London"), ZoneInfo("America/New_York")


def in_london(demo) -> None:
    demo["tenant_obj"].time_zone = "Europe/London"
    demo["tenant_obj"].save(update_fields=["time_zone"])


def decide_by_attribute(page: str) -> str:
    marker = '<dt>Decide by</dt><dd><time datetime="'
    return page[page.index(marker) + len(marker):].split('"', 1)[0]


def test_a_case_page_shows_times_in_the_organisations_zone_then_in_the_persons_own(signed_in, demo, raise_escalation):
    case = raise_escalation()
    client = signed_in("ceo")
    assert decide_by_attribute(client.get(f"/e/{case.pk}/").content.decode()).endswith("+01:00")  # the site's: Lagos

    in_london(demo)
    assert decide_by_attribute(client.get(f"/e/{case.pk}/").content.decode()).endswith("+00:00")

    saved = client.post("/settings/language/", {"language": "", "time_zone": "America/New_York"})
    assert saved.status_code == 302
    assert decide_by_attribute(client.get(f"/e/{case.pk}/").content.decode()).endswith("-05:00")
    assert User.objects.get(username="ceo").time_zone == "America/New_York"
    changed = AuditEvent.objects.get(action="person.time_zone_changed")
    assert (changed.before, changed.after) == ({"time_zone": ""}, {"time_zone": "America/New_York"})


def test_an_unknown_time_zone_is_refused_and_nothing_changes(signed_in, demo):
    client = signed_in("ceo")

    answer = client.post("/settings/language/", {"language": "", "time_zone": "Mars/Olympus"}, follow=True)

    assert "Choose one of the time zones offered." in answer.content.decode()
    assert User.objects.get(username="ceo").time_zone == ""
    assert not AuditEvent.objects.filter(action="person.time_zone_changed").exists()


def test_the_zone_of_one_request_does_not_leak_into_the_next_on_the_same_thread(signed_in, demo, raise_escalation):
    case = raise_escalation()
    client = signed_in("ceo")
    client.post("/settings/language/", {"language": "", "time_zone": "Asia/Tokyo"})
    client.get(f"/e/{case.pk}/")  # activates Tokyo on this thread

    assert Client().get("/accounts/login/").status_code == 200
    assert timezone.get_current_timezone_name() == "Africa/Lagos"  # the next request deactivated it


def test_an_approvers_email_says_when_to_decide_in_their_own_zone(demo, vendor, raise_escalation):
    in_london(demo)
    User.objects.filter(username="co").update(time_zone="America/New_York")  # (the compliance officer: not asked)
    with time_machine.travel(datetime(2026, 12, 8, 12, 0, tzinfo=LONDON), tick=False):
        case = raise_escalation()
        relay()

    email = Message.objects.get(channel="email", user__username="ceo")
    deadline = timezone.localtime(case.expires_at, LONDON)
    assert f"Decide by:     {deadline:%a} {deadline.day} {deadline:%b %Y, %H:%M} GMT" in email.body


def test_a_person_in_another_zone_gets_quiet_hours_in_their_zone(signed_in, demo, vendor, raise_escalation):
    client = signed_in("ceo")
    client.post("/settings/language/", {"language": "", "time_zone": "America/New_York"})
    client.post("/settings/notifications/", {"quiet_hours": "custom", "quiet_start": "22:00", "quiet_end": "07:00",
                                             "critical_override": "on", "channel_email": "on"})

    # 23:00 in New York is 05:00 in Lagos: quiet for her, so her email waits until 07:00 in New York.
    with time_machine.travel(datetime(2026, 12, 8, 23, 0, tzinfo=NEW_YORK), tick=False):
        raise_escalation()
        relay()

    delivery = Delivery.objects.get(kind="email", message__user__username="ceo")
    assert delivery.next_attempt_at == datetime(2026, 12, 9, 7, 0, tzinfo=NEW_YORK)


def test_the_organisations_default_quiet_hours_are_read_in_each_persons_zone(demo, vendor, raise_escalation):
    in_london(demo)
    TenantNotificationDefaults.objects.create(tenant=demo["tenant_obj"], quiet_hours_enabled=True,
                                              quiet_start=time(22), quiet_end=time(7))

    with time_machine.travel(datetime(2026, 12, 8, 22, 30, tzinfo=LONDON), tick=False):  # 23:30 in Lagos
        raise_escalation()
        relay()

    assert (Delivery.objects.get(kind="email", message__user__username="ceo").next_attempt_at
            == datetime(2026, 12, 9, 7, 0, tzinfo=LONDON))


def test_an_absence_typed_as_09_30_means_09_30_where_the_person_is(demo, demo_actor):
    User.objects.filter(username="ceo").update(time_zone="America/New_York")
    start = (timezone.now() + timedelta(days=2)).astimezone(NEW_YORK).replace(tzinfo=None, hour=9, minute=30, second=0,
                                                                                microsecond=0)

    delegation = delegation_create(actor=demo_actor("ceo"), delegator=user("ceo"), known_types=["HIGH_VALUE"],
                                   wanted=DelegationInput(delegate=user("sm"), starts_at=start,
                                                          ends_at=start + timedelta(hours=8)))

    assert delegation.starts_at.astimezone(NEW_YORK).replace(tzinfo=None) == start


def test_an_operator_sets_the_organisations_time_zone_in_the_admin(demo, admin_client):
    tenant = demo["tenant_obj"]
    page = admin_client.get(f"/admin/accounts/tenant/{tenant.pk}/change/").content.decode()
    assert '<option value="Europe/London">' in page and "The site&#x27;s (Africa/Lagos)" in page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_ceo_chooses_her_time_zone_from_the_account_menu_on_her_phone(open_as, raise_escalation):  # noqa: F811
    from playwright.sync_api import expect

    from tests.dashboard.test_browser import PHONE, shoot

    case = raise_escalation()
    page = open_as("ceo", viewport=PHONE)
    page.click(".account summary")
    page.click("text=Language and time zone")
    page.wait_for_url("**/settings/language/")
    page.select_option("#time-zone", "Europe/London")
    page.click("main button[type=submit]")

    expect(page.locator(".messages")).to_contain_text("Saved.")
    expect(page.locator("#time-zone")).to_have_value("Europe/London")
    shoot(page, "language-and-time-zone")
    page.goto(f"/e/{case.pk}/")
    deadline = timezone.localtime(case.expires_at, LONDON)
    expect(page.locator("[datetime$='+00:00']").first).to_be_visible()
    assert f"{deadline.day} {deadline:%b %Y, %H:%M}" in page.locator("#case").inner_text()
