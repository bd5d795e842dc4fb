"""A requester outside the tenant opens the status link from their email on a phone (screenshot:
docs/screenshots/requester-status-phone.png)."""

from __future__ import annotations

import re
import shutil
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from escalations.services import escalation_decide
from notifications.models import Channel, Message
from notifications.relay import outbox_relay
from tests.api.conftest import ORDER, api  # noqa: F401  (a fixture)
from tests.conftest import totp_code
from tests.dashboard.test_browser import ARTIFACTS, CHROMIUM_ARGS, PHONE, browser, shoot  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
OUTSIDER = "buyer@shop.example"


def open_the_link_emailed_for(chromium: Any, live_server: Any, purpose: str) -> tuple[Any, Any, list[str]]:
    """The requester's email about `purpose` is sent; they open its status link on a phone, signed out."""
    outbox_relay()
    email = Message.objects.get(channel=Channel.EMAIL, audience="requester", purpose=purpose)
    (link,) = set(re.findall(re.escape(live_server.url) + r"/r/[^/\s]+/", email.body))
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(link)
    return context, page, problems


def test_on_a_phone_the_requester_sees_where_their_deferred_order_stands_and_what_it_still_needs(
        browser, live_server, api, demo, demo_actor, settings):  # noqa: F811
    settings.SITE_URL = live_server.url
    case = api("vendor").post("/escalations", {**ORDER, "requested_by": OUTSIDER}, key=str(uuid.uuid4())).json()
    ceo = demo_actor("ceo")
    escalation_decide(actor=ceo, escalation=case["id"], decision="defer", justification="Waiting for the bank",
                      otp=totp_code(ceo.user), defer_until=timezone.now() + timedelta(hours=6))
    context, page, problems = open_the_link_emailed_for(browser, live_server, "escalation.deferred")
    expect(page.locator("[data-testid=status-words]")).to_contain_text("On hold until")
    expect(page.locator("[data-testid=still-needed]")).to_contain_text("1 more approval from the CEO.")
    expect(page.locator("body")).not_to_contain_text("Ngozi")
    # One column that fits the phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(page, "requester-status-phone")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(ARTIFACTS / "requester-status-phone.png", SCREENSHOTS / "requester-status-phone.png")
    context.close()
    assert problems == []


def test_on_a_phone_the_requester_answers_the_ceo_s_question_without_signing_in(
        browser, live_server, api, demo, settings):  # noqa: F811
    settings.SITE_URL = live_server.url
    case = api("vendor").post("/escalations", {**ORDER, "requested_by": OUTSIDER}, key=str(uuid.uuid4())).json()
    asked = api("ceo").post(f"/escalations/{case['id']}/comments",
                            {"body": "Is the delivery address your own office?", "question": True})
    assert asked.status_code == 201
    context, page, problems = open_the_link_emailed_for(browser, live_server, "escalation.commented")
    expect(page.locator("[data-testid=question]")).to_contain_text("Is the delivery address your own office?")
    expect(page.locator("[data-testid=question]")).to_contain_text("Asked by the CEO")
    page.get_by_label("Your answer").fill("Yes: our warehouse at 12 Marina, Lagos.")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shoot(page, "requester-answer-phone")
    page.get_by_role("button", name="Send my answer").click()
    expect(page.locator("[data-testid=notice]")).to_contain_text("Thank you: your answer was sent.")
    expect(page.locator("[data-testid=answer-form]")).to_have_count(0)
    shoot(page, "requester-answered-phone")
    context.close()
    assert problems == []
    thread = api("ceo").get(f"/escalations/{case['id']}/comments").json()
    assert thread["awaiting_requester"] is False and thread["results"][-1]["by_requester"] is True
