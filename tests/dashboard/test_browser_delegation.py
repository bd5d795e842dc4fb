"""Out of office in a real browser (issue 19): the CEO sets "I'm away" with a deputy, the deputy finds the order in
their queue marked as held for the CEO, decides it with their own code, and the case says on whose behalf.

Screenshots: docs/screenshots/delegation-away.png (the away page, with the banner), delegation-case.png (the deputy
on the case, deciding on behalf of the CEO) and delegation-case-decided.png.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from approvals.models import Decision
from tests.conftest import totp_code
from tests.dashboard.conftest import user
from tests.dashboard.test_browser import DESKTOP, browser, open_as  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def test_the_ceo_goes_away_and_the_deputy_decides_on_their_behalf(open_as, raise_escalation):  # noqa: F811
    from playwright.sync_api import expect

    page = open_as("ceo", DESKTOP)
    page.click("nav >> text=I'm away")
    page.fill("#a-starts", "2020-01-01T09:00")  # in the past: from now
    page.fill("#a-ends", "2099-01-01T09:00")  # more than 90 days: refused, naming the field
    page.select_option("#a-delegate", label=f"{user('sm').get_full_name()} (sm)")
    page.click("button:has-text('Save out of office')")
    expect(page.locator(".has-error .field-error")).to_contain_text("90 days")

    page.fill("#a-ends", "2020-01-08T18:00")  # before "now": refused too
    page.click("button:has-text('Save out of office')")
    expect(page.locator(".has-error .field-error")).to_be_visible()
    ends = (timezone.localtime() + timedelta(days=7)).strftime("%Y-%m-%dT18:00")
    page.fill("#a-ends", ends)
    page.click("button:has-text('Save out of office')")
    expect(page.locator("[data-testid=away-banner]")).to_contain_text(user("sm").get_full_name())
    expect(page.locator("[data-testid=away-list]")).to_contain_text("Active")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "delegation-away.png"), full_page=True)

    order = raise_escalation()
    deputy = open_as("sm", DESKTOP)
    card = deputy.locator(f"[data-id='{order.pk}']")
    expect(card.locator("[data-testid=held-for]")).to_contain_text(user("ceo").get_full_name())
    card.locator("a").click()
    expect(deputy.locator("[data-testid=deciding-on-behalf]")).to_contain_text(user("ceo").get_full_name())
    expect(deputy.locator("[data-testid=who-must-act]")).to_contain_text("standing in for")
    deputy.evaluate("window.scrollTo(0, 0)")
    deputy.screenshot(path=str(SCREENSHOTS / "delegation-case.png"), full_page=True)
    deputy.fill("#d-justification", "Standing in for the CEO: payment confirmed with the bank.")
    deputy.fill("#d-otp", totp_code(user("sm")))
    deputy.click("button:has-text('Submit decision')")

    expect(deputy.locator("[data-testid=case-status]")).to_have_text("Approved")
    expect(deputy.locator("[data-testid=on-behalf-of]")).to_contain_text(user("ceo").get_full_name())
    deputy.evaluate("window.scrollTo(0, 0)")
    deputy.screenshot(path=str(SCREENSHOTS / "delegation-case-decided.png"), full_page=True)
    decision = Decision.objects.get(request=order.approval)
    assert (decision.decided_by.username, decision.on_behalf_of_id) == ("sm", user("ceo").pk)
