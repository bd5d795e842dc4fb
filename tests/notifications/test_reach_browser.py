"""The approver's email, followed in a real browser: the link signs the person in and lands on the case.

Playwright drives Debian's Chromium against a live server; the email comes through a real SMTP server on
127.0.0.1. The email's HTML part is also rendered at phone width and left in test-artifacts/ to look at.
"""

from __future__ import annotations

import re

import pytest

from tests.dashboard.test_browser import ARTIFACTS, PHONE, browser  # noqa: F401  (browser is a fixture)

from .conftest import email_part, relay
from .test_reach import NAIRA, big_order, received, send_all_email

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_link_in_the_ceo_s_email_signs_her_in_and_lands_on_the_case(
        browser, live_server, demo, vendor, smtp_receiver, settings):  # noqa: F811
    settings.SITE_URL = live_server.url
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # the live server speaks plain http
    case = big_order(vendor, "ORD-1")
    relay()
    send_all_email()
    (email,) = received(smtp_receiver, "ceo@demo.example")
    html = email_part(email, "text/html")
    link = re.search(re.escape(live_server.url) + r"/e/[0-9a-f-]+/", email_part(email)).group(0)  # type: ignore[union-attr]
    assert link == f"{live_server.url}/e/{case.pk}/"

    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(link)
        page.wait_for_url(re.compile(r"/accounts/login/\?next="))
        page.fill("#id_username", "ceo")
        page.fill("#id_password", demo["by_name"]["ceo"]["password"])
        page.click("button[type=submit]")
        page.wait_for_url(link)
        assert page.locator("[data-testid=case-amount]").inner_text() == NAIRA
        assert "ORD-1" in page.locator("#case").inner_text()

        # The email as a phone shows it: the HTML part, and its button goes to the same case.
        ARTIFACTS.mkdir(exist_ok=True)
        mail = context.new_page()
        mail.set_content(html)
        assert NAIRA in mail.locator("h1").inner_text()
        button = mail.get_by_role("link", name="Review and decide")
        assert button.get_attribute("href") == link
        mail.screenshot(path=str(ARTIFACTS / "approver-email-phone.png"), full_page=True)
    finally:
        context.close()
