"""The requester's pages: My requests, New escalation (with its preview and one case per double click), and the
requester's, approver's and conversation's actions on the case page."""

from __future__ import annotations

import re

import pytest

from escalations.models import Comment, Escalation
from escalations.services import SourceRef, escalation_create, escalation_decide
from tests.conftest import totp_code
from tests.dashboard.conftest import user

pytestmark = pytest.mark.django_db

NEW = {"type": "SANCTIONS_MATCH", "reason": "Name matches a listed person", "amount": "2,500,000.00",
       "currency": "NGN", "risk_level": "high", "urgency": "high", "source_system": "dashboard",
       "source_entity_type": "customer", "source_entity_id": "CUST-42", "source_url": "",
       "attachments": "https://docs.example/screening/CUST-42.pdf",
       "payload-TOTAL_FORMS": "3", "payload-INITIAL_FORMS": "0", "payload-MIN_NUM_FORMS": "0",
       "payload-MAX_NUM_FORMS": "20", "payload-0-key": "list", "payload-0-value": "OFAC SDN",
       "payload-1-key": "", "payload-1-value": "", "payload-2-key": "", "payload-2-value": ""}


def form_key(client) -> str:
    page = client.get("/new/").content.decode()
    found = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page)
    assert found is not None
    return found.group(1)


def test_a_compliance_officer_raises_a_manual_escalation_and_a_double_click_makes_one_case(signed_in):
    co = signed_in("co")
    key = form_key(co)
    first = co.post("/new/", {**NEW, "idempotency_key": key})
    second = co.post("/new/", {**NEW, "idempotency_key": key})

    assert first.status_code == 302 and second.status_code == 302
    assert first["Location"] == second["Location"]
    case = Escalation.objects.get()
    assert case.requested_by_user is not None and case.requested_by_user.username == "co"
    assert (case.type, case.amount_minor) == ("SANCTIONS_MATCH", 250_000_000)
    assert case.payload["list"] == "OFAC SDN" and case.payload["attachments"][0]["url"].endswith("CUST-42.pdf")


def test_a_change_from_a_pre_approved_template_with_its_cost_and_window_is_approved_at_once(signed_in, demo_actor):
    from escalations.standard_changes import template_upsert

    template_upsert(actor=demo_actor("ops"), slug="index-rebuild", fields={
        "name": "Index rebuild", "type": "OPERATION_CHANGE", "pre_approved": True,
        "defaults": {"reason": "Rebuild a bloated index"}, "limits": {"max_amount_minor": 1_000_000_00}})
    co = signed_in("co")
    assert "Index rebuild (OPERATION_CHANGE, pre-approved within limits)" in co.get("/new/").content.decode()

    response = co.post("/new/", {**NEW, "idempotency_key": form_key(co), "template": "index-rebuild",
                                 "type": "OPERATION_CHANGE", "reason": "", "amount": "", "risk_level": "low",
                                 "estimated_cost": "120,000.00", "estimated_cost_currency": "NGN",
                                 "window_starts_at": "2099-01-01T22:00", "window_ends_at": "2099-01-02T02:00"})

    errors = re.findall(r"(?:field-error|message-error)[^>]*>([^<]*)", response.content.decode())
    assert response.status_code == 302, errors
    case = Escalation.objects.get()
    assert case.status == "approved" and case.template is not None and case.template["pre_approved"] is True
    assert (case.reason, case.estimated_cost_minor, case.estimated_cost_currency) == ("Rebuild a bloated index",
                                                                                     12_000_000, "NGN")
    assert case.window_starts_at is not None and case.window_ends_at is not None
    assert case.window_ends_at > case.window_starts_at


def test_a_window_with_only_a_start_is_refused_on_the_form(signed_in):
    co = signed_in("co")
    response = co.post("/new/", {**NEW, "idempotency_key": form_key(co), "window_starts_at": "2099-01-01T22:00"})
    assert response.status_code == 400 and not Escalation.objects.exists()
    assert "A window needs a start and an end." in response.content.decode()


def test_the_preview_says_what_the_request_will_need(signed_in):
    response = signed_in("co").post("/new/preview/", {"type": "OPERATION_CHANGE", "risk_level": "high"})
    assert response.status_code == 200
    assert "2 approvals" in response.content.decode() and "Senior manager" in response.content.decode()


def test_bad_input_is_shown_on_the_form_and_creates_nothing(signed_in):
    co = signed_in("co")
    response = co.post("/new/", {**NEW, "reason": " ", "amount": "12.345", "idempotency_key": form_key(co)})
    assert response.status_code == 400
    assert not Escalation.objects.exists()
    assert "This field is required." in response.content.decode()


def test_people_without_create_manual_get_a_403(signed_in):
    assert signed_in("sm").get("/new/").status_code == 403


def test_my_requests_lists_only_mine_with_filters(signed_in, demo_actor):
    co = demo_actor("co")
    mine = escalation_create(actor=co, type="SMR", reason="Cash deposits", source=SourceRef("d", "c", "MINE-1"))
    escalation_create(actor=demo_actor("ceo"), type="SMR", reason="Other", source=SourceRef("d", "c", "THEIRS-1"))
    page = signed_in("co").get("/requests/").content.decode()
    assert "MINE-1" in page and "THEIRS-1" not in page
    assert "MINE-1" not in signed_in("co").get("/requests/?status=closed").content.decode()
    assert str(mine.pk) in page


def test_the_requester_sees_four_eyes_up_front_and_waiting_for_you_skips_own_requests(signed_in, demo_actor):
    case = escalation_create(actor=demo_actor("co"), type="SANCTIONS_MATCH", reason="Match",
                             source=SourceRef("d", "c", "C-1"))
    co = signed_in("co")
    page = co.get(f"/e/{case.pk}/").content.decode()
    assert 'data-testid="four-eyes"' in page and 'name="otp"' not in page
    assert "C-1" not in co.get("/").content.decode()  # my own request is not in my queue
    assert "C-1" in signed_in("co2").get("/").content.decode()


def test_question_answer_amend_and_cancel_on_the_case_page(signed_in, demo_actor):
    case = escalation_create(actor=demo_actor("co"), type="OPERATION_CHANGE", reason="Reindex", risk_level="high",
                             source=SourceRef("d", "change", "CHG-1"), amount=None)
    sm = signed_in("sm")
    assert sm.post(f"/e/{case.pk}/comment/", {"body": "Which window?", "question": "on"}).status_code == 302
    co = signed_in("co")
    page = co.get(f"/e/{case.pk}/").content.decode()
    assert 'data-testid="awaiting-you"' in page and "Which window?" in page
    co.post(f"/e/{case.pk}/comment/", {"body": "02:00 UTC"})
    assert Comment.objects.filter(by_requester=True).count() == 1

    sm_user = user("sm")
    escalation_decide(actor=demo_actor("sm"), escalation=case, decision="approve", justification="ok",
                      otp=totp_code(sm_user))
    refused = co.post(f"/e/{case.pk}/amend/", {"reason": "Reindex at night", "risk_level": "high", "payload": "{}",
                                               "amount": "", "currency": "NGN", "justification": ""})
    assert refused.status_code == 400
    amended = co.post(f"/e/{case.pk}/amend/", {"reason": "Reindex at night", "risk_level": "high", "payload": "{}",
                                               "amount": "", "currency": "NGN", "justification": "Safer window"})
    assert amended.status_code == 302
    page = sm.get(f"/e/{case.pk}/").content.decode()
    assert 'data-dismissed="1"' in page and "dismissed by amendment" in page
    assert 'data-testid="amendment-diff"' in page and "Reindex at night" in page

    assert co.post(f"/e/{case.pk}/cancel/", {"reason": "Not needed"}).status_code == 302
    case.refresh_from_db()
    assert case.status == "cancelled"
    assert co.post(f"/e/{case.pk}/amend/", {"reason": "x", "risk_level": "high", "payload": "{}", "amount": "",
                                            "currency": "NGN", "justification": "late"}).status_code == 409


def test_a_decision_made_on_the_page_as_it_was_before_an_amendment_is_refused(signed_in, demo_actor):
    case = escalation_create(actor=demo_actor("co"), type="OPERATION_CHANGE", reason="Reindex", risk_level="high",
                             source=SourceRef("d", "change", "CHG-2"))
    from escalations.amendments import escalation_amend

    escalation_amend(actor=demo_actor("co"), escalation=case, changes={"reason": "Reindex twice"},
                     justification="Two passes")
    response = signed_in("sm").post(f"/e/{case.pk}/decide/", {
        "decision": "approve", "justification": "ok", "otp": totp_code(user("sm")), "revision": "1"})
    assert response.status_code == 409 and "amended this while you were reading" in response.content.decode()
    case.refresh_from_db()
    assert case.approvals_received == 0


def test_an_estimated_cost_that_is_not_money_is_refused_on_the_form_like_the_amount(signed_in):
    co = signed_in("co")
    response = co.post("/new/", {**NEW, "idempotency_key": form_key(co), "estimated_cost": "lots"})
    assert response.status_code == 400 and not Escalation.objects.exists()
    assert "Enter a number, e.g. 2500000.00" in response.content.decode()
