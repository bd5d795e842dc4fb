"""A requester known only by email answers an approver's question on their signed status page (/r/<token>/), and
reads the tenant's people by role only in every email they get.

Emails go through a real SMTP server on 127.0.0.1; the link in them is opened with a test client, signed out and
with CSRF checks on, as the requester's browser would.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from escalations.models import Comment
from escalations.sweeps import sweep_deadlines
from privacy.models import PrivacySettings
from tests.api.conftest import api  # noqa: F401  (a fixture)

from .conftest import email_part
from .test_requester_status_link import OUTSIDER, SITE, _site, ask, decide, emails_to, page_text, status_link  # noqa: F401

pytestmark = pytest.mark.django_db
QUESTION = "Is the delivery address your own office?"
ANSWER = "Yes: our warehouse at 12 Marina, Lagos."
CEO_EMAIL = "ceo@demo.example"


def ask_the_requester(api, case_id: str, body: str = QUESTION) -> None:  # noqa: F811
    """The CEO, deciding the case, asks its requester a question through the API."""
    response = api("ceo").post(f"/escalations/{case_id}/comments", {"body": body, "question": True})
    assert response.status_code == 201, response.content


def question_link(api, smtp_receiver) -> tuple[str, str]:  # noqa: F811
    """A case asked by the outsider, the CEO's question, and the status link of the email that carries it."""
    case_id = ask(api)
    ask_the_requester(api, case_id)
    (email,) = emails_to(smtp_receiver, OUTSIDER)
    return case_id, status_link(email_part(email))


def answer(link: str, body: str) -> tuple[Client, Any]:
    """Open the page as the requester's browser does (its CSRF cookie and the form's token), then send `body`."""
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(link)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token, "no answer form on the page"
    return browser, browser.post(f"{link}answer/", {"body": body, "csrfmiddlewaretoken": token.group(1)})


def conversation(api, case_id: str) -> dict:  # noqa: F811
    return api("ceo").get(f"/escalations/{case_id}/comments").json()


def test_the_question_email_links_to_the_status_page_and_names_the_asker_by_role_only(api, demo, smtp_receiver):  # noqa: F811
    case_id = ask(api)
    ask_the_requester(api, case_id)

    (email,) = emails_to(smtp_receiver, OUTSIDER)
    text, html = email_part(email), email_part(email, "text/html")
    assert status_link(text) == status_link(html)
    assert "The CEO asks you a question about ₦2,500,000.00 order ORD-1001: answer it on your request's page." in text
    assert f"/e/{case_id}/" not in text and f"/e/{case_id}/" not in html
    for words in (text, html):
        assert not re.search(r"\bceo\b", words) and "Ngozi" not in words  # neither the username nor the name


def test_the_requester_reads_the_question_answers_it_signed_out_and_the_asker_hears_of_it(
        api, demo, smtp_receiver):  # noqa: F811
    case_id, link = question_link(api, smtp_receiver)
    page = Client().get(link)
    words = page_text(page)
    assert QUESTION in words and "Asked by the CEO" in words
    # The form posts with the page's Origin (under "no-referrer" a browser sends "Origin: null", which CSRF refuses).
    assert page["Referrer-Policy"] == "same-origin" and "no-store" in page["Cache-Control"]
    assert "Ngozi" not in words and not re.search(r"\bceo\b", words)
    assert conversation(api, case_id)["awaiting_requester"] is True
    told_before = len(emails_to(smtp_receiver, CEO_EMAIL))

    browser, sent = answer(link, ANSWER)

    assert sent.status_code == 302 and sent["Location"] == f"{link}?answered=1"
    after = browser.get(sent["Location"])
    assert "Thank you: your answer was sent." in page_text(after) and "<form" not in after.content.decode()
    thread = conversation(api, case_id)
    assert thread["awaiting_requester"] is False
    reply = thread["results"][-1]
    assert reply["body"] == ANSWER and reply["by_requester"] is True
    assert reply["author"] == "requester:b***@shop.example" and OUTSIDER not in reply["author"]
    told = emails_to(smtp_receiver, CEO_EMAIL)
    assert len(told) == told_before + 1  # whoever asked is told, the requester's email masked
    assert "b***@shop.example answered on ₦2,500,000.00 order ORD-1001." in email_part(told[-1])
    assert OUTSIDER not in email_part(told[-1]) and "requester:" not in email_part(told[-1])
    # Audited as what it is: the requester through their link, the email masked, never in clear.
    audit = AuditEvent.objects.filter(action="escalation.commented").order_by("-id").first()
    assert audit is not None and audit.actor_type == "system" and audit.actor_id == "requester_status_link"
    assert OUTSIDER not in str(audit.details) and "b***@shop.example" in str(audit.details)


def test_the_case_page_shows_the_answer_as_the_requester_s(api, demo, smtp_receiver):  # noqa: F811
    case_id, link = question_link(api, smtp_receiver)
    answer(link, ANSWER)
    staff = Client()
    staff.force_login(User.objects.get(username="ceo"))

    words = page_text(staff.get(f"/e/{case_id}/"))

    assert ANSWER in words and "b***@shop.example requester" in words


def test_an_empty_answer_is_shown_as_an_error_on_the_page_and_nothing_is_written(api, demo, smtp_receiver):  # noqa: F811
    case_id, link = question_link(api, smtp_receiver)

    _, sent = answer(link, "   ")

    assert sent.status_code == 400 and "This field is required." in page_text(sent)
    assert 'name="body"' in sent.content.decode()  # the form again, to try once more
    assert Comment.objects.filter(escalation_id=case_id).count() == 1
    assert conversation(api, case_id)["awaiting_requester"] is True


def test_an_answer_longer_than_a_comment_may_be_is_refused(api, demo, smtp_receiver):  # noqa: F811
    case_id, link = question_link(api, smtp_receiver)

    _, sent = answer(link, "x" * 5001)

    assert sent.status_code == 400 and "at most 5000 characters" in page_text(sent)
    assert Comment.objects.filter(escalation_id=case_id).count() == 1


def test_a_tampered_link_cannot_answer(api, demo, smtp_receiver):  # noqa: F811
    case_id, link = question_link(api, smtp_receiver)
    token = link.split("/")[2]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")

    assert Client().post(f"/r/{flipped}/answer/", {"body": ANSWER}).status_code == 404
    assert Client().post("/r/not-a-token/answer/", {"body": ANSWER}).status_code == 404
    assert Comment.objects.filter(escalation_id=case_id).count() == 1


def test_the_answer_needs_the_page_s_csrf_token(api, demo, smtp_receiver):  # noqa: F811
    case_id, link = question_link(api, smtp_receiver)

    assert Client(enforce_csrf_checks=True).post(f"{link}answer/", {"body": ANSWER}).status_code == 403
    assert Comment.objects.filter(escalation_id=case_id).count() == 1


def test_a_closed_case_shows_no_form_and_refuses_an_answer(api, demo, demo_actor, smtp_receiver):  # noqa: F811
    case_id, link = question_link(api, smtp_receiver)
    browser = Client(enforce_csrf_checks=True)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get(link).content.decode())
    assert token
    decide(demo_actor, case_id, "approve", "Known customer")

    assert "<form" not in browser.get(link).content.decode()
    refused = browser.post(f"{link}answer/", {"body": ANSWER, "csrfmiddlewaretoken": token.group(1)})
    assert refused.status_code == 409 and "There is no open question to answer" in page_text(refused)
    assert Comment.objects.filter(escalation_id=case_id).count() == 1


def test_erasing_the_requester_erases_their_answer(api, demo, demo_actor, smtp_receiver):  # noqa: F811
    PrivacySettings.objects.create(tenant=demo["tenant_obj"], aml_types=[])  # no AML hold on this tenant's cases
    case_id, link = question_link(api, smtp_receiver)
    answer(link, ANSWER)
    decide(demo_actor, case_id, "approve", "Known customer")

    assert api("co").post("/subjects/erase", {"email": OUTSIDER}).json()["status"] == "erased"

    question, reply = conversation(api, case_id)["results"]
    assert reply["by_requester"] is True and reply["body"] is None and reply["author"] == "requester"
    assert question["body"] == QUESTION  # the CEO's words are not the requester's data


@pytest.mark.parametrize(("decision", "headline"), [
    ("approve", "The CEO approved ₦2,500,000.00 order ORD-1001."),
    ("reject", "The CEO rejected ₦2,500,000.00 order ORD-1001."),
    ("defer", "The CEO deferred ₦2,500,000.00 order ORD-1001 until "),
])
def test_the_outsider_s_decision_emails_name_the_decider_s_role_not_the_person(
        api, demo, demo_actor, smtp_receiver, decision, headline):  # noqa: F811
    case_id = ask(api)
    extra = {"defer_until": timezone.now() + timedelta(hours=6)} if decision == "defer" else {}
    decide(demo_actor, case_id, decision, "Checked with the bank", **extra)

    (email,) = emails_to(smtp_receiver, OUTSIDER)
    text, html = email_part(email), email_part(email, "text/html")
    assert headline in text
    for words in (text, html):
        assert "Ngozi" not in words and not re.search(r"\bceo\b", words)


def test_an_overdue_condition_email_to_the_outsider_names_no_owner_and_the_page_no_way_into_the_staff_side(
        api, demo, demo_actor, smtp_receiver):  # noqa: F811
    case_id = ask(api)
    due = timezone.now() + timedelta(hours=1)
    decide(demo_actor, case_id, "approve", "Fine once the invoice is in",
           conditions=[{"text": "Send the signed invoice", "owner": "sm", "due_at": due.isoformat()}])
    emails_to(smtp_receiver, OUTSIDER)  # the approval
    smtp_receiver.messages.clear()

    with time_machine.travel(due + timedelta(hours=1), tick=False):
        sweep_deadlines()
    (email,) = emails_to(smtp_receiver, OUTSIDER)

    text = email_part(email)
    assert 'Condition overdue on ₦2,500,000.00 order ORD-1001: "Send the signed invoice" was due ' in text
    assert f"was due {timezone.localtime(due, ZoneInfo('Africa/Lagos')):%a %-d %b, %H:%M} WAT." in text  # in words
    assert "owner" not in text and not re.search(r"\bsm\b", text) and "Amina" not in text
    page = Client().get(status_link(text)).content.decode()
    assert 'class="brand" href' not in page  # the logo would lead a signed-out outsider to the staff sign-in
