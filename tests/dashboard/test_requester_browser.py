"""The requester's story in a real browser: a compliance officer raises a manual SANCTIONS_MATCH, a senior manager
asks a question, the officer answers and amends the reason, the manager approves. Screenshots of
My requests, the New escalation form and the case with its conversation and amendment diff go to docs/screenshots/.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from accounts.actors import Actor
from accounts.models import Tenant
from escalations.models import Escalation
from escalations.policies import policy_upsert
from tests.conftest import totp_code
from tests.dashboard.conftest import user
from tests.dashboard.test_browser import ARTIFACTS, browser, open_as, shoot  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def keep(name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(ARTIFACTS / f"{name}.png", SCREENSHOTS / f"{name}.png")


def test_a_compliance_officer_raises_a_sanctions_match_a_manager_asks_the_officer_answers_and_the_manager_approves(
        open_as, demo):  # noqa: F811  (the fixture imported above)
    tenant = Tenant.objects.get(slug="demo")
    # Raised by a compliance officer, a sanctions match goes to a senior manager here (the officer cannot decide
    # their own request: four eyes).
    policy_upsert(tenant=tenant, type="SANCTIONS_MATCH", fields={"route": [["senior_manager"]]},
                  actor=Actor.for_system(tenant, "test"))

    co = open_as("co")
    co.click("nav >> text=My requests")
    co.click("text=New escalation")
    co.select_option("#id_type", "SANCTIONS_MATCH")
    co.fill("#id_reason", "Customer name matches a listed person (OFAC SDN, 92%).")
    co.fill("#id_amount", "2500000")
    co.select_option("#id_risk_level", "high")
    co.fill("#id_source_entity_type", "customer")
    co.fill("#id_source_entity_id", "CUST-42")
    co.fill("#id_payload-0-key", "list")
    co.fill("#id_payload-0-value", "OFAC SDN")
    co.fill("#id_payload-1-key", "match_score")
    co.fill("#id_payload-1-value", "92%")
    co.fill("#id_attachments", "https://docs.example/screening/CUST-42.pdf")
    co.locator("#id_urgency").select_option("high")
    co.wait_for_selector("[data-testid=check-preview] >> text=Senior manager")
    shoot(co, "new-escalation")
    keep("new-escalation")
    co.dblclick("[data-testid=create-escalation]")
    co.wait_for_url(re.compile(r"/e/[0-9a-f-]+/$"))
    assert Escalation.objects.filter(source_entity_id="CUST-42").count() == 1  # a double click, one case
    case = Escalation.objects.get(source_entity_id="CUST-42")
    assert co.locator("[data-testid=four-eyes]").is_visible()

    sm = open_as("sm")
    sm.goto(f"/e/{case.pk}/")
    sm.fill("#id_body", "Which ID document did you compare against, @co?")
    sm.check("#id_question")
    sm.click("[data-testid=comment-form] button")
    sm.wait_for_selector("[data-testid=awaiting-requester]")

    co.goto(f"/e/{case.pk}/")
    assert co.locator("[data-testid=awaiting-you]").is_visible()
    co.fill("#id_body", "The passport on file (A1234567); date of birth differs by a year.")
    co.click("[data-testid=comment-form] button")
    co.wait_for_selector("text=date of birth differs")
    co.click("summary:has-text('Amend this request')")
    co.fill("[data-testid=amend-form] #id_reason",
            "Customer name matches a listed person (OFAC SDN, 92%); date of birth differs.")
    co.fill("[data-testid=amend-form] #id_justification", "Added what the passport check showed.")
    co.click("[data-testid=amend-form] button")
    co.wait_for_selector("[data-testid=amendment-diff]")

    co.click("nav >> text=My requests")
    co.wait_for_selector("[data-testid=my-request]")
    shoot(co, "my-requests")
    keep("my-requests")

    sm.goto(f"/e/{case.pk}/")
    assert not sm.locator("[data-testid=awaiting-requester]").count()
    sm.fill("#d-justification", "Different date of birth: a false positive.")
    sm.fill("#d-otp", totp_code(user("sm")))
    sm.click("button:has-text('Submit decision')")
    sm.wait_for_selector("[data-testid=case-status] >> text=Approved")
    case.refresh_from_db()
    assert case.status == "approved"
    sm.goto(f"/e/{case.pk}/#conversation")
    shoot(sm, "case-conversation-amendment")
    keep("case-conversation-amendment")
