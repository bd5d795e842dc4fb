"""A change on the case page, in a real browser: its window with a countdown, its cost and variance, its
obligations with evidence. The screenshots go to docs/screenshots/ (the README shows them)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from escalations.intake import ExecutionWindow, Money
from escalations.obligation_actions import condition_add_evidence, condition_resolve
from escalations.services import SourceRef, escalation_create, escalation_decide, escalation_record_execution
from tests.conftest import totp_code
from tests.dashboard.test_browser import DESKTOP, PHONE, browser, open_as  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def _change(vendor, entity_id: str, starts_in: timedelta, cost: int):
    now = timezone.now()
    return escalation_create(
        actor=vendor, type="OPERATION_CHANGE", risk_level="medium",
        reason="Upgrade the orders database (RDS PostgreSQL 15.4 -> 15.5) with a failover",
        source=SourceRef("dba-tool", "change", entity_id), estimated_cost=Money(cost, "NGN"),
        execution_window=ExecutionWindow(now + starts_in, now + starts_in + timedelta(hours=4)),
        payload={"cluster": "orders-prod", "runbook": "RB-7"})


def _approve(actor, case, conditions):
    return escalation_decide(actor=actor, escalation=case, decision="approve", justification="Tested on staging",
                             otp=totp_code(actor.user), conditions=conditions)


def test_a_change_shows_its_window_cost_variance_and_obligations(open_as, vendor, demo_actor):  # noqa: F811
    from playwright.sync_api import expect

    done = _change(vendor, "CHG-77", -timedelta(minutes=30), 12_000_000)
    done = _approve(demo_actor("sm"), done, [{"text": "Attach the rollback plan", "owner": "ops"},
                                             "Tell the on-call team before the failover"])
    plan, on_call = (c["id"] for c in done.conditions)
    condition_add_evidence(actor=demo_actor("ops"), escalation=done, condition_id=plan, note="Rollback plan v2",
                           url="https://wiki.example/changes/CHG-77/rollback")
    condition_resolve(actor=demo_actor("sm2"), escalation=done, condition_id=plan, status="met")
    condition_resolve(actor=demo_actor("sm"), escalation=done, condition_id=on_call, status="waived",
                      justification="The on-call engineer runs the change")
    escalation_record_execution(actor=vendor, escalation=done, result={"failover_seconds": 21},
                                actual_cost=Money(13_550_000, "NGN"))
    later = _approve(demo_actor("sm2"), _change(vendor, "CHG-78", timedelta(hours=2), 4_500_000),
                     ["Snapshot the volume first"])

    page = open_as("sm")
    page.goto(f"/e/{done.pk}/")
    expect(page.locator("[data-testid=estimated-cost]")).to_have_text("₦120,000.00")
    expect(page.locator("[data-testid=actual-cost]")).to_contain_text("₦135,500.00")
    expect(page.locator("[data-testid=cost-variance]")).to_have_text("+₦15,500.00 over estimate")
    expect(page.locator("[data-testid=execution-window]")).to_contain_text("Execute between")
    expect(page.locator("[data-testid=obligation]")).to_have_count(2)
    expect(page.locator("[data-testid=obligation]").first).to_contain_text("Met")
    expect(page.locator("[data-testid=obligation]").first).to_contain_text("Rollback plan v2")
    expect(page.locator("[data-testid=obligation]").nth(1)).to_contain_text("Waived")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "change-window-cost-obligations.png"), full_page=True)

    phone = open_as("sm2", PHONE)
    phone.goto(f"/e/{later.pk}/")
    expect(phone.locator("[data-testid=window-countdown]")).to_contain_text(re.compile(r"opens in (1h \d+m|2h)"))
    phone.clock.run_for(31_000)  # the countdown keeps itself current
    expect(phone.locator("[data-testid=window-countdown] time")).to_contain_text("opens in")
    expect(phone.locator("[data-testid=obligation]")).to_contain_text("Open")
    phone.evaluate("window.scrollTo(0, 0)")
    phone.screenshot(path=str(SCREENSHOTS / "change-window-countdown-phone.png"), full_page=True)
