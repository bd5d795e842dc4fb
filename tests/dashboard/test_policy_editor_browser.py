"""The policy editor and the operators' home in a real browser: build a route, preview it, save it.

Screenshots land in docs/screenshots/ (policy-editor.png, policy-preview.png, operators-home.png).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from escalations.models import Policy
from tests.dashboard.test_browser import DESKTOP, browser, open_as  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def test_an_operator_adds_a_stage_for_large_amounts_previews_it_and_saves_it(open_as, demo):  # noqa: F811
    from playwright.sync_api import expect

    policy = Policy.objects.get(tenant=demo["tenant_obj"], type="HIGH_VALUE")
    page = open_as("ops", DESKTOP)

    page.goto(f"/admin/escalations/policy/{policy.pk}/change/")
    page.select_option("select[name=stage_0_people]", ["gb"])  # named beside the CEO (issue 22)
    page.check("input[name=stage_1_roles][value=governing_body]")
    page.select_option("select[name=stage_1_mode]", "fixed")
    page.fill("input[name=stage_1_approvals]", "1")
    page.select_option("select[name=stage_1_when_fact]", "amount")
    page.select_option("select[name=stage_1_when_op]", ">=")
    page.fill("input[name=stage_1_when_value]", "5000000")
    page.fill("input[name=stage_1_when_currency]", "NGN")
    page.fill("input[name=approvals_low]", "1")
    page.fill("input[name=approvals_medium]", "1")
    page.fill("input[name=approvals_high]", "1")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "policy-editor.png"), full_page=True)

    page.fill("input[name=preview_amount]", "6000000")
    page.select_option("select[name=preview_risk]", "high")
    page.click("[data-testid=preview-button]")
    page.locator("#policy-preview > div").first.wait_for()
    result = page.locator("[data-testid=preview-result]")
    result.wait_for()
    assert "2 approvals" in result.inner_text()
    assert "amount ≥ ₦5,000,000.00" in result.inner_text()
    assert "Funke Adeyemi (named)" in result.inner_text()  # a named person is told first, beside the CEO
    page.locator("#preview").scroll_into_view_if_needed()
    page.locator("#preview").screenshot(path=str(SCREENSHOTS / "policy-preview.png"))

    page.fill("input[name=preview_amount]", "2000000")
    page.click("[data-testid=preview-button]")
    expect(page.locator("[data-testid=preview-approvals]")).to_have_text("1 approval")

    page.click("input[name=_save]")
    page.wait_for_url("**/admin/escalations/policy/")
    policy.refresh_from_db()
    assert policy.version == 2
    assert policy.route[0]["people"] == ["gb"]
    assert policy.route[1]["when"] == {"fact": "amount", "op": ">=", "value": 500_000_000, "currency": "NGN"}


def test_the_operators_home_at_1366_px(open_as, raise_escalation):  # noqa: F811
    raise_escalation()
    page = open_as("ops", DESKTOP)

    page.goto("/admin/")

    assert page.locator("[data-testid=attention-dead-letters]").is_visible()
    assert "TrustGuard" in page.title()
    page.screenshot(path=str(SCREENSHOTS / "operators-home.png"), full_page=True)
