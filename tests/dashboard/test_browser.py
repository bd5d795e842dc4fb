"""The dashboard in a real browser (Playwright driving Debian's Chromium) against a live server.

Screenshots of the queue and the case page at phone and desktop widths land in test-artifacts/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from escalations.models import Escalation, EscalationStatus
from tests.conftest import totp_code
from tests.dashboard.conftest import user

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def open_as(browser, live_server, demo, settings) -> Iterator[Callable[..., Page]]:
    """A signed-in page for a person, at a viewport; console errors (e.g. CSP refusals) fail the test."""
    # The live server speaks plain http; Secure cookies would not come back over it.
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    contexts: list[Any] = []
    problems: list[str] = []

    def _open(username: str, viewport: dict[str, int] = DESKTOP, password: str | None = None) -> Page:
        context = browser.new_context(viewport=viewport, base_url=live_server.url)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.clock.install()  # htmx polling is driven by timers: tests fast-forward them instead of sleeping
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password or demo["by_name"][username]["password"])
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/$"))
        return page

    yield _open
    for context in contexts:
        context.close()
    # 4xx responses we provoke on purpose are logged by Chromium as failed resources; anything else is a bug.
    unexpected = [p for p in problems if "Failed to load resource" not in p]
    assert not unexpected, unexpected


def next_queue_poll(page: Page) -> None:
    """Fast-forwards the page's clock past the queue's 15 s poll and waits for the poll's answer. A poll element that a
    filter swapped in is armed when htmx settles the swap, which on a busy machine can come after the clock was moved
    on; the clock also runs by itself, so that poll answers at most one real interval later (CI saw the badge read
    before it, once)."""
    with page.expect_response(lambda r: r.request.headers.get("hx-trigger") == "queue-poll", timeout=20_000):
        page.clock.run_for(16_000)


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # a sticky header would otherwise be painted mid-page
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def pending_badge(page: Page) -> str:
    return page.locator("[data-testid=pending-badge] .pill-count").inner_text()


def test_the_ceo_approves_the_2_5_million_naira_order_and_the_queue_and_badges_follow(
        open_as, raise_escalation, order_with_receipt):
    from playwright.sync_api import expect

    other = raise_escalation(entity_id="ORD-1002", naira=20_000, flags=["vendor_flagged"], urgency="high")
    for viewport, label in ((PHONE, "phone"), (DESKTOP, "desktop")):
        page = open_as("ceo", viewport)
        expect(page.locator("[data-testid=queue-item]").first).to_contain_text("₦2,500,000.00")
        shoot(page, f"queue-{label}")
        page.click(f"[data-id='{order_with_receipt.pk}'] a")
        expect(page.locator("[data-testid=case-amount]")).to_have_text("₦2,500,000.00")
        shoot(page, f"escalation-{label}")
    assert pending_badge(page) == "2"

    page.evaluate("window.notReloaded = true")  # survives only if the page is never reloaded
    page.fill("#d-justification", "Called the customer; payment confirmed with the bank.")
    page.fill("#d-otp", totp_code(user("ceo")))
    page.click("button:has-text('Submit decision')")

    expect(page.locator("[data-testid=case-status]")).to_have_text("Approved")
    expect(page.locator("#case-notice")).to_contain_text("Approved")
    expect(page.locator("[data-testid=decision]")).to_contain_text("Called the customer")
    assert pending_badge(page) == "1"
    assert page.evaluate("window.notReloaded") is True
    shoot(page, "escalation-approved-desktop")
    assert Escalation.objects.get(pk=order_with_receipt.pk).status == EscalationStatus.APPROVED

    page.click("nav >> text=Queue")
    expect(page.locator("[data-testid=queue-item]")).to_have_count(1)
    expect(page.locator("[data-testid=queue-item]")).to_have_attribute("data-id", str(other.pk))

    # Live: a new escalation arrives while the queue is open; the next poll (every 15 s) shows it.
    page.evaluate("window.notReloaded = true")
    raise_escalation(entity_id="ORD-1003", naira=3_000_000)
    next_queue_poll(page)
    expect(page.locator("[data-testid=queue-item]")).to_have_count(2)
    expect(page.locator("[data-testid=pending-badge] .pill-count")).to_have_text("2")
    assert page.evaluate("window.notReloaded") is True


def test_a_wrong_code_shows_an_error_next_to_the_field_and_changes_nothing(open_as, raise_escalation):
    from playwright.sync_api import expect

    escalation = raise_escalation()
    page = open_as("ceo")
    page.goto(f"/e/{escalation.pk}/")
    code = totp_code(user("ceo"))
    page.fill("#d-justification", "Looks fine to me.")
    page.fill("#d-otp", "".join(str((int(c) + 5) % 10) for c in code))
    page.click("button:has-text('Submit decision')")

    expect(page.locator("#e-otp")).to_contain_text("wrong or expired")
    expect(page.locator("#d-otp")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#d-otp")).to_be_focused()
    expect(page.locator("[data-testid=case-status]")).to_have_text("Pending")
    expect(page.locator("#d-justification")).to_have_value("Looks fine to me.")
    shoot(page, "escalation-wrong-code-desktop")
    escalation.refresh_from_db()
    assert escalation.status == EscalationStatus.PENDING
    assert escalation.approval.decisions.count() == 0


def test_a_compliance_officer_acknowledges_and_then_defers(open_as, raise_escalation):
    from playwright.sync_api import expect

    case = raise_escalation(naira=None, type="SANCTIONS_MATCH", entity_id="CUS-88", urgency="critical",
                            reason="Name match on a sanctions list (score 0.91)")
    page = open_as("co", PHONE)
    page.click(f"[data-id='{case.pk}'] a")

    page.click("button:has-text('Acknowledge')")
    expect(page.locator("[data-testid=case-status]")).to_have_text("Acknowledged")

    page.check("#d-defer")
    expect(page.locator("#d-defer-until")).to_be_visible()
    expect(page.locator("#d-conditions")).to_be_hidden()
    page.fill("#d-defer-until", (timezone.localtime() + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#d-justification", "Waiting for the customer's passport copy.")
    page.fill("#d-otp", totp_code(user("co")))
    page.click("button:has-text('Submit decision')")

    expect(page.locator("[data-testid=case-status]")).to_have_text("Deferred")
    expect(page.locator("[data-testid=waiting-for]")).to_contain_text("Deferred until")
    case.refresh_from_db()
    assert case.status == EscalationStatus.DEFERRED
    assert case.acknowledged_by == user("co")


def test_an_outsider_of_another_tenant_cannot_open_the_page(open_as, raise_escalation, make_tenant, make_person):
    escalation = raise_escalation()
    make_person(make_tenant("otherbank"), "ceo", "outsider")

    page = open_as("outsider", password="correct horse battery")
    response = page.goto(f"/e/{escalation.pk}/")

    assert response.status == 404
    assert "₦2,500,000" not in page.content()


def test_the_signed_attachment_link_works_then_expires(open_as, order_with_receipt):
    from playwright.sync_api import expect

    page = open_as("ceo")
    page.goto(f"/e/{order_with_receipt.pk}/")
    link = page.locator("[data-testid=attachment-link]")
    expect(link).to_have_text("receipt.pdf")
    href = link.get_attribute("href")

    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "receipt.pdf"

    with time_machine.travel(timezone.now() + timedelta(minutes=6), tick=True):
        response = page.goto(href)
        assert response.status == 410
        expect(page.locator("h1")).to_have_text("This link has expired")


def test_filters_apply_without_a_reload_and_the_live_refresh_keeps_them(open_as, raise_escalation):
    from playwright.sync_api import expect

    raise_escalation(entity_id="ORD-BIG")
    raise_escalation(entity_id="ORD-FLAGGED", naira=20_000, flags=["vendor_flagged"])
    page = open_as("ceo", PHONE)
    page.evaluate("window.notReloaded = true")

    page.click("summary:has-text('Filters')")
    page.select_option("#f-type", "VENDOR_FLAGGED")
    expect(page.locator("[data-testid=queue-item]")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"type=VENDOR_FLAGGED"))

    raise_escalation(entity_id="ORD-BIG-2")  # HIGH_VALUE: arrives, but does not match the filter
    next_queue_poll(page)
    expect(page.locator("[data-testid=pending-badge] .pill-count")).to_have_text("3")
    expect(page.locator("[data-testid=queue-item]")).to_have_count(1)
    expect(page.locator("[data-testid=queue-item]")).to_contain_text("ORD-FLAGGED")
    assert page.evaluate("window.notReloaded") is True
