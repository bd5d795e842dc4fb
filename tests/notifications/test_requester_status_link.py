"""A requester known only by email (a source system's `requested_by` outside the tenant) follows their request
through the signed status link in their emails (/r/<token>/): no account, read-only, never another case.

Emails go through a real SMTP server on 127.0.0.1; the link in them is opened with a test client, signed out,
as the requester would.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.models import User
from escalations.services import escalation_decide
from privacy.models import PrivacySettings
from tests.api.conftest import ORDER, api  # noqa: F401  (a fixture)
from tests.conftest import totp_code
from trustguard.links import requester_status_url

from .conftest import deliver, email_part, pending, relay

pytestmark = pytest.mark.django_db
SITE = "https://trustguard.example.ng"
OUTSIDER = "buyer@shop.example"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE


def ask(api, requested_by: str = OUTSIDER, entity_id: str = "ORD-1001") -> str:  # noqa: F811
    """The shop's order service asks for a decision on behalf of someone outside the tenant."""
    body = {**ORDER, "requested_by": requested_by, "source": {**ORDER["source"], "entity_id": entity_id}}
    response = api("vendor").post("/escalations", body, key=str(uuid.uuid4()))
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def decide(demo_actor, case_id: str, decision: str, justification: str, **kwargs) -> None:
    ceo = demo_actor("ceo")
    escalation_decide(actor=ceo, escalation=case_id, decision=decision, justification=justification,
                      otp=totp_code(ceo.user), **kwargs)


def emails_to(smtp_receiver, to: str) -> list:
    relay()
    for delivery in pending("email"):
        assert deliver(delivery) == "delivered"
    return [message for rcpts, message in smtp_receiver.messages if rcpts == [to]]


def status_link(text: str) -> str:
    found = re.findall(re.escape(SITE) + r"/r/[^/\s\"<]+/", text)
    assert found, f"no status link in {text!r}"
    return urlsplit(found[0]).path


def page_text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_the_outside_requester_s_email_links_to_a_status_page_that_opens_without_signing_in(
        api, demo, demo_actor, smtp_receiver):  # noqa: F811
    case_id = ask(api)
    decide(demo_actor, case_id, "defer", "Waiting for the bank's answer",
           defer_until=timezone.now() + timedelta(hours=6))

    (email,) = emails_to(smtp_receiver, OUTSIDER)
    text, html = email_part(email), email_part(email, "text/html")
    link = status_link(text)
    assert status_link(html) == link
    assert "Follow your request:" in text and "Follow your request" in html
    assert f"/e/{case_id}/" not in text and f"/e/{case_id}/" not in html  # the staff page would only ask to sign in

    page = Client().get(link)
    assert page.status_code == 200
    words = page_text(page)
    assert "Your request to Demo Ltd" in words
    assert "On hold until" in words and "1 more approval from the CEO." in words
    assert "₦2,500,000.00" in words and "ORD-1001" in words and "Order above the threshold" in words
    # What the requester may know, not who the approvers are, nor the case's other people.
    assert "Ngozi" not in words and "Eze" not in words and "ceo@demo.example" not in words
    assert 'name="csrfmiddlewaretoken"' not in page.content.decode() and "<form" not in page.content.decode()
    assert page["X-Robots-Tag"].startswith("noindex") and page["Referrer-Policy"] == "no-referrer"
    assert "no-store" in page["Cache-Control"] and "private" in page["Cache-Control"]


def test_once_decided_the_page_says_the_outcome_when_and_the_decider_s_reason_in_role_terms(
        api, demo, demo_actor, smtp_receiver):  # noqa: F811
    case_id = ask(api)
    decide(demo_actor, case_id, "reject", "The card was flagged by the bank")

    (email,) = emails_to(smtp_receiver, OUTSIDER)
    words = page_text(Client().get(status_link(email_part(email))))

    assert "Rejected" in words and "The outcome" in words
    assert "Decided by the CEO" in words and "The card was flagged by the bank" in words
    assert "Ngozi" not in words and "What is still needed" not in words


def test_a_tampered_link_is_not_found(api, demo, demo_actor, smtp_receiver):  # noqa: F811
    case_id = ask(api)
    decide(demo_actor, case_id, "approve", "Known customer")
    (email,) = emails_to(smtp_receiver, OUTSIDER)
    link = status_link(email_part(email))
    token = link.split("/")[2]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")

    assert Client().get(link).status_code == 200
    assert Client().get(f"/r/{flipped}/").status_code == 404
    assert Client().get("/r/not-a-token/").status_code == 404


def test_a_link_past_its_days_says_it_has_expired(api, demo, demo_actor, smtp_receiver, settings):  # noqa: F811
    settings.REQUESTER_LINK_DAYS = 3
    case_id = ask(api)
    decide(demo_actor, case_id, "approve", "Known customer")
    (email,) = emails_to(smtp_receiver, OUTSIDER)
    link = status_link(email_part(email))

    with time_machine.travel(timezone.now() + timedelta(days=2, hours=23)):
        assert Client().get(link).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=3, hours=1)):
        expired = Client().get(link)
    assert expired.status_code == 410
    assert "This link has expired" in page_text(expired) and "Approved" not in page_text(expired)


def test_a_link_signed_for_another_requester_never_opens_their_case(api, demo):  # noqa: F811
    mine = ask(api, OUTSIDER, "ORD-1")
    theirs = ask(api, "someone.else@other.example", "ORD-2")

    assert Client().get(urlsplit(requester_status_url(mine, OUTSIDER)).path).status_code == 200
    # Our own signature, the other case's id, my email: still not my case.
    assert Client().get(urlsplit(requester_status_url(theirs, OUTSIDER)).path).status_code == 404
    assert Client().get(urlsplit(requester_status_url(uuid.uuid4(), OUTSIDER)).path).status_code == 404


def test_after_the_requester_s_data_is_erased_their_link_is_not_found(api, demo, demo_actor, smtp_receiver):  # noqa: F811
    PrivacySettings.objects.create(tenant=demo["tenant_obj"], aml_types=[])  # no AML hold on this tenant's cases
    case_id = ask(api)
    decide(demo_actor, case_id, "approve", "Known customer")
    (email,) = emails_to(smtp_receiver, OUTSIDER)
    link = status_link(email_part(email))
    assert Client().get(link).status_code == 200

    assert api("co").post("/subjects/erase", {"email": OUTSIDER}).json()["status"] == "erased"
    assert Client().get(link).status_code == 404


def test_a_requester_of_the_tenant_s_own_staff_named_by_email_keeps_the_case_page_link(
        api, demo, demo_actor, smtp_receiver):  # noqa: F811
    staff = demo["by_name"]["co"]["email"]
    case_id = ask(api, staff)
    decide(demo_actor, case_id, "approve", "Known customer")

    (email,) = emails_to(smtp_receiver, staff)
    text = email_part(email)
    assert f"{SITE}/e/{case_id}/" in text and "/r/" not in text
    assert Client().get(urlsplit(requester_status_url(case_id, staff)).path).status_code == 404


def test_the_page_reads_in_the_tenant_s_language(api, demo, demo_actor, smtp_receiver):  # noqa: F811
    tenant = demo["tenant_obj"]
    tenant.language = "fr"
    tenant.save(update_fields=["language"])
    case_id = ask(api)
    decide(demo_actor, case_id, "approve", "Client connu")
    (email,) = emails_to(smtp_receiver, OUTSIDER)

    page = Client(headers={"Accept-Language": "en"}).get(status_link(email_part(email)))
    assert page.status_code == 200 and '<html lang="fr">' in page.content.decode()
    assert page["Content-Language"] == "fr"


def test_a_signed_in_person_with_a_language_of_their_own_still_sees_the_page_as_the_requester_reads_it(
        api, demo, demo_actor, smtp_receiver):  # noqa: F811
    tenant = demo["tenant_obj"]
    tenant.language = "fr"
    tenant.save(update_fields=["language"])
    User.objects.filter(username="co").update(language="en")
    case_id = ask(api)
    decide(demo_actor, case_id, "approve", "Client connu")
    (email,) = emails_to(smtp_receiver, OUTSIDER)
    browser = Client()
    browser.force_login(User.objects.get(username="co"))

    page = browser.get(status_link(email_part(email)))

    assert page.status_code == 200 and '<html lang="fr">' in page.content.decode()
