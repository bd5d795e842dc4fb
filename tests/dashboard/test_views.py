"""The approver dashboard over HTTP (Django's test client): who sees what, deciding, links, bounds."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import SealedTOTPDevice, Tenant
from approvals.models import ApprovalRequest, Decision
from escalations.models import Escalation, EscalationStatus
from escalations.selectors import escalation_visible, escalations_visible_to
from escalations.services import SourceRef, escalation_create, escalation_decide
from tests.conftest import totp_code
from tests.dashboard.conftest import RECEIPT, user

pytestmark = pytest.mark.django_db


def found(pattern: str, text: str) -> str:
    """The first group of `pattern` in `text` (failing the test when absent)."""
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found"
    return match.group(1)


def wrong(code: str) -> str:
    """A code that is certainly not `code` (every digit shifted)."""
    return "".join(str((int(c) + 5) % 10) for c in code)


# --- queue -------------------------------------------------------------------------------------------


def test_the_ceo_sees_the_2_5_million_naira_order_in_their_queue(raise_escalation, signed_in):
    raise_escalation()

    page = signed_in("ceo").get("/").content.decode()

    assert "₦2,500,000.00" in page
    assert "ORD-1001" in page
    assert 'data-testid="pending-badge"' in page


def test_the_queue_is_sorted_by_the_most_urgent_deadline_first(raise_escalation, signed_in):
    later = raise_escalation(entity_id="ORD-LATER")
    sooner = raise_escalation(entity_id="ORD-SOONER")
    Escalation.objects.filter(pk=later.pk).update(next_deadline_at=timezone.now() + timedelta(hours=5))
    Escalation.objects.filter(pk=sooner.pk).update(next_deadline_at=timezone.now() + timedelta(minutes=5))

    page = signed_in("ceo").get("/").content.decode()

    assert page.index("ORD-SOONER") < page.index("ORD-LATER")


def test_the_waiting_badge_counts_to_999_then_says_999_plus(raise_escalation, signed_in):
    first = raise_escalation()
    badge = signed_in("ceo").get("/badges/").content.decode()
    assert found(r'data-testid="pending-badge">\s*<span class="pill-count">([^<]*)<', badge) == "1"

    copies = []
    for request in ApprovalRequest.objects.bulk_create(
            [ApprovalRequest(tenant_id=first.tenant_id) for _ in range(999)]):
        copy = Escalation.objects.get(pk=first.pk)
        copy.pk, copy.approval, copy.source_entity_id = uuid.uuid4(), request, f"ORD-{request.pk}"
        copies.append(copy)
    Escalation.objects.bulk_create(copies)  # 1,000 waiting for the CEO now

    badge = signed_in("ceo").get("/badges/").content.decode()
    assert found(r'data-testid="pending-badge">\s*<span class="pill-count">([^<]*)<', badge) == "999+"


def test_a_compliance_officer_does_not_see_the_ceos_items_in_their_own_queue(raise_escalation, signed_in):
    raise_escalation()

    page = signed_in("co").get("/").content.decode()

    assert "ORD-1001" not in page
    assert "all caught up" in page


def test_filters_and_search_narrow_the_queue(raise_escalation, signed_in):
    raise_escalation(entity_id="ORD-1001")
    raise_escalation(entity_id="ORD-2002", naira=20_000, flags=["vendor_flagged"])
    client = signed_in("ceo")

    by_search = client.get("/", {"q": "2002"}).content.decode()
    by_type = client.get("/", {"type": "HIGH_VALUE"}).content.decode()
    overdue = client.get("/", {"overdue": "1"}).content.decode()

    assert "ORD-2002" in by_search and "ORD-1001" not in by_search
    assert "ORD-1001" in by_type and "ORD-2002" not in by_type
    assert "Nothing matches these filters" in overdue


def test_nonsense_filters_and_cursors_never_break_the_queue(raise_escalation, signed_in):
    raise_escalation()

    response = signed_in("ceo").get("/", {"status": "<script>", "risk": "x" * 500, "cursor": "!!not-base64",
                                          "type": "'; drop table"})

    assert response.status_code == 200


def test_the_cursor_pages_through_the_queue_without_repeats_or_gaps(raise_escalation, signed_in):
    ids = {str(raise_escalation(entity_id=f"ORD-{i:03d}").pk) for i in range(30)}
    client = signed_in("ceo")
    seen: list[str] = []
    url: str = "/"
    params: dict[str, str] = {}
    for _ in range(5):
        page = client.get(url, params).content.decode()
        seen += re.findall(r'data-testid="queue-item" data-id="([0-9a-f-]+)"', page)
        cursor = re.search(r'cursor=([A-Za-z0-9_-]+)"', page)
        if not cursor:
            break
        params = {"cursor": cursor.group(1)}

    assert len(seen) == 30
    assert set(seen) == ids


@pytest.mark.parametrize("queued", [10, 200])
def test_the_queue_renders_in_a_bounded_number_of_queries(queued, raise_escalation, signed_in,
                                                          django_assert_max_num_queries):
    for i in range(queued):
        raise_escalation(entity_id=f"ORD-{i:04d}")
    client = signed_in("ceo")

    # 11: one of them is the cases whose open stage names the person (issue 22; escalations.models.named_q).
    with django_assert_max_num_queries(11):
        response = client.get("/")

    assert response.status_code == 200
    assert response.content.decode().count('data-testid="queue-item"') == min(queued, 25)


def test_a_signed_in_page_reads_its_session_from_the_cache_not_the_database(signed_in):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in("ceo")
    client.get("/")  # the first read after login may fill the cache

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200

    assert not [q["sql"] for q in queries.captured_queries if "django_session" in q["sql"]]


@pytest.mark.parametrize("decisions", [0, 1])
def test_the_case_page_renders_in_a_bounded_number_of_queries(decisions, order_with_receipt, signed_in, demo_actor,
                                                              django_assert_max_num_queries):
    from escalations.services import escalation_decide

    if decisions:
        escalation_decide(actor=demo_actor("ceo"), escalation=order_with_receipt, decision="defer",
                          justification="Waiting for the bank", otp=totp_code(user("ceo")),
                          defer_until=timezone.now() + timedelta(hours=12))
    client = signed_in("ceo")

    # 11 for the case and its decision; +2 out of office (issue 19): the tenant's delegations in force (one read for
    # the page, its banner and badge) and the stage's members (who must act now); +1 the tenant's terminology
    # (escalations.terminology), one query when its cache is cold, as here; +1 its conversation, +1 its amendments;
    # +1 the cases whose open stage names the person (issue 22: the header's "waiting for you" badge counts them).
    with django_assert_max_num_queries(17):
        response = client.get(f"/e/{order_with_receipt.pk}/")

    assert response.status_code == 200


def test_the_badges_partial_counts_what_waits_for_me(raise_escalation, signed_in):
    raise_escalation(entity_id="A")
    raise_escalation(entity_id="B")

    page = signed_in("ceo").get("/badges/", HTTP_HX_REQUEST="true").content.decode()

    assert re.search(r'pill-count">2<', page)


# --- visibility ---------------------------------------------------------------------------------------


def test_an_outsider_of_another_tenant_gets_404_for_the_case(raise_escalation, make_tenant, make_person, client):
    escalation = raise_escalation()
    other = make_tenant("otherbank")
    make_person(other, "ceo", "outsider")
    client.post("/accounts/login/", {"username": "outsider", "password": "correct horse battery"})

    assert client.get(f"/e/{escalation.pk}/").status_code == 404
    assert client.get(f"/e/{escalation.pk}/attachments/0/?t=x").status_code == 404
    response = client.post(f"/e/{escalation.pk}/decide/", {"decision": "approve", "justification": "x",
                                                            "otp": totp_code(user("outsider"))})
    assert response.status_code == 404
    assert escalation.approval.decisions.count() == 0


def test_a_person_without_view_rights_gets_404(raise_escalation, signed_in):
    escalation = raise_escalation()

    assert signed_in("analyst").get(f"/e/{escalation.pk}/").status_code == 404


def test_escalations_visible_to_follows_the_capabilities(raise_escalation, demo_actor, demo):
    from accounts.services import capability_revoke

    escalation = raise_escalation()
    assert escalation in escalations_visible_to(actor=demo_actor("co"))  # view_all

    capability_revoke(tenant=demo["tenant_obj"], role="compliance_officer", capability="escalation.view_all",
                      actor=Actor.for_system(demo["tenant_obj"], "test"))

    assert escalation not in escalations_visible_to(actor=demo_actor("co"))  # only its own role's now
    assert escalation in escalations_visible_to(actor=demo_actor("ceo"))
    # No view capability at all: nothing (the pages turn that into an empty queue and 404s).
    assert escalation_visible(actor=demo_actor("analyst"), pk=escalation.pk) is None


def test_a_malformed_case_id_is_a_404_not_a_500(signed_in):
    assert signed_in("ceo").get("/e/not-a-uuid/").status_code == 404


# --- deciding -----------------------------------------------------------------------------------------


def test_the_ceo_approves_with_a_totp_code(raise_escalation, signed_in):
    escalation = raise_escalation()

    response = signed_in("ceo").post(f"/e/{escalation.pk}/decide/", {
        "decision": "approve", "justification": "Customer verified by phone", "otp": totp_code(user("ceo"))})

    assert response.status_code == 302
    escalation.refresh_from_db()
    assert escalation.status == EscalationStatus.APPROVED


def test_with_htmx_a_decision_returns_the_case_in_its_new_state_and_fresh_badges(raise_escalation, signed_in):
    escalation = raise_escalation()

    response = signed_in("ceo").post(f"/e/{escalation.pk}/decide/", {
        "decision": "approve_conditions", "justification": "Fine", "conditions": "Deliver in two lots\nCall first",
        "otp": totp_code(user("ceo"))}, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-status="approved"' in page
    assert "Deliver in two lots" in page
    assert 'hx-swap-oob="true"' in page and re.search(r'pill-count">0<', page)


def test_a_wrong_code_is_shown_next_to_the_code_field_and_changes_nothing(raise_escalation, signed_in):
    escalation = raise_escalation()

    response = signed_in("ceo").post(f"/e/{escalation.pk}/decide/", {
        "decision": "approve", "justification": "Looks fine", "otp": wrong(totp_code(user("ceo")))},
        HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert response.status_code == 403
    assert 'id="e-otp"' in page and "wrong or expired" in page
    assert "Looks fine" in page  # the justification is kept for the second try
    escalation.refresh_from_db()
    assert escalation.status == EscalationStatus.PENDING
    assert not Decision.objects.exists()


def test_a_missing_justification_is_a_400_next_to_its_field(raise_escalation, signed_in):
    escalation = raise_escalation()

    response = signed_in("ceo").post(f"/e/{escalation.pk}/decide/", {
        "decision": "reject", "justification": "  ", "otp": totp_code(user("ceo"))})

    assert response.status_code == 400
    assert 'id="e-justification"' in response.content.decode()


def test_deferring_needs_a_date(raise_escalation, signed_in):
    escalation = raise_escalation()

    response = signed_in("ceo").post(f"/e/{escalation.pk}/decide/", {
        "decision": "defer", "justification": "Later", "otp": totp_code(user("ceo"))})

    assert response.status_code == 400
    assert 'id="e-defer"' in response.content.decode()


def test_approving_with_conditions_needs_a_condition(raise_escalation, signed_in):
    escalation = raise_escalation()

    response = signed_in("ceo").post(f"/e/{escalation.pk}/decide/", {
        "decision": "approve_conditions", "justification": "Yes", "otp": totp_code(user("ceo"))})

    assert response.status_code == 400
    assert 'id="e-conditions"' in response.content.decode()


def test_a_decision_on_a_final_escalation_is_a_409(raise_escalation, signed_in):
    escalation = raise_escalation()
    client = signed_in("ceo")
    client.post(f"/e/{escalation.pk}/decide/", {"decision": "approve", "justification": "ok",
                                                 "otp": totp_code(user("ceo"))})

    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        response = client.post(f"/e/{escalation.pk}/decide/", {"decision": "reject", "justification": "no",
                                                                "otp": totp_code(user("ceo"))})

    assert response.status_code == 409


def test_a_person_of_another_role_cannot_decide_and_is_told_why(raise_escalation, signed_in):
    escalation = raise_escalation()

    response = signed_in("co").post(f"/e/{escalation.pk}/decide/", {
        "decision": "approve", "justification": "ok", "otp": totp_code(user("co"))})

    assert response.status_code == 403
    escalation.refresh_from_db()
    assert escalation.status == EscalationStatus.PENDING


def test_the_compliance_officer_acknowledges_and_defers(raise_escalation, signed_in):
    case = raise_escalation(naira=None, type="SANCTIONS_MATCH", entity_id="CUS-88", reason="Name match on a list")
    client = signed_in("co")

    acknowledged = client.post(f"/e/{case.pk}/acknowledge/")
    deferred = client.post(f"/e/{case.pk}/decide/", {
        "decision": "defer", "justification": "Waiting for the passport copy", "otp": totp_code(user("co")),
        "defer_until": (timezone.localtime() + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M")})

    assert acknowledged.status_code == deferred.status_code == 302
    case.refresh_from_db()
    assert case.status == EscalationStatus.DEFERRED
    assert case.acknowledged_by == user("co")
    assert case.defer_until > timezone.now() + timedelta(hours=6)


def test_acknowledging_twice_is_a_409_with_a_message(raise_escalation, signed_in):
    case = raise_escalation(naira=None, type="SANCTIONS_MATCH", entity_id="CUS-88")
    client = signed_in("co")
    client.post(f"/e/{case.pk}/acknowledge/")

    response = client.post(f"/e/{case.pk}/acknowledge/", HTTP_HX_REQUEST="true")

    assert response.status_code == 409
    assert 'id="case-error"' in response.content.decode()


def test_forms_refuse_a_post_without_the_csrf_token(raise_escalation, demo):
    from django.test import Client

    escalation = raise_escalation()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user("ceo"))

    response = client.post(f"/e/{escalation.pk}/acknowledge/")

    assert response.status_code == 403
    escalation.refresh_from_db()
    assert escalation.status == EscalationStatus.PENDING


# --- the case page ---------------------------------------------------------------------------------------


def test_the_case_page_masks_the_customers_contact_data(order_with_receipt, signed_in):
    page = signed_in("ceo").get(f"/e/{order_with_receipt.pk}/").content.decode()

    assert "adaeze.nwosu@example.com" not in page and "a***@example.com" in page
    assert "+2348031234567" not in page and "***4567" in page


def test_the_case_page_shows_route_history_and_what_is_still_needed(order_with_receipt, signed_in):
    page = signed_in("ceo").get(f"/e/{order_with_receipt.pk}/").content.decode()

    assert "Stage 1: CEO" in page
    assert "1 more approval" in page
    assert "Created</strong> by api_key:vendor" in page
    assert "GEN-5KVA" in page  # the payload, rendered


def test_a_signed_attachment_link_works_for_its_person_for_five_minutes(order_with_receipt, signed_in):
    client = signed_in("ceo")
    page = client.get(f"/e/{order_with_receipt.pk}/").content.decode()
    link = found(r'href="(/e/[^"]+/attachments/0/\?t=[^"]+)"', page).replace("&amp;", "&")

    fresh = client.get(link)
    with time_machine.travel(timezone.now() + timedelta(minutes=5, seconds=5)):
        expired = signed_in("ceo").get(link)

    assert fresh.status_code == 200 and fresh.content == RECEIPT
    assert fresh["Content-Disposition"].startswith("attachment;")
    assert expired.status_code == 410


def test_a_signed_attachment_link_refuses_another_person(order_with_receipt, signed_in):
    page = signed_in("ceo").get(f"/e/{order_with_receipt.pk}/").content.decode()
    link = found(r'href="(/e/[^"]+/attachments/0/\?t=[^"]+)"', page)

    forwarded = signed_in("gb").get(link)  # governing body may view the case, but this is the CEO's link
    tampered = signed_in("ceo").get(link.replace("/attachments/0/", "/attachments/1/"))

    assert forwarded.status_code == 403
    assert tampered.status_code == 403


def test_pages_carry_a_strict_content_security_policy_and_no_inline_script(order_with_receipt, signed_in):
    response = signed_in("ceo").get(f"/e/{order_with_receipt.pk}/")
    page = response.content.decode()

    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers
    assert not re.search(r'\sstyle="', page)


def test_summary_shows_counts_and_my_overdue_items(raise_escalation, signed_in):
    overdue = raise_escalation(entity_id="LATE")
    Escalation.objects.filter(pk=overdue.pk).update(ack_due_at=timezone.now() - timedelta(minutes=5))
    raise_escalation(entity_id="ON-TIME")

    page = signed_in("ceo").get("/summary/").content.decode()

    assert re.search(r'data-testid="my-overdue">1<', page)
    assert "<svg" in page


# --- accounts ----------------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client, db):
    response = client.get("/")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_wrong_password_is_refused_and_logout_needs_a_post(signed_in, client, demo):
    refused = client.post("/accounts/login/", {"username": "ceo", "password": "nope"})
    ceo = signed_in("ceo")

    assert refused.status_code == 200 and "correct username and password" in refused.content.decode()
    assert ceo.get("/accounts/logout/").status_code == 405
    assert ceo.post("/accounts/logout/").status_code == 302
    assert ceo.get("/").status_code == 302


def test_a_person_in_two_tenants_switches_between_them_and_only_to_their_own(raise_escalation, make_tenant, demo,
                                                                            signed_in):
    from accounts.services import membership_add

    escalation = raise_escalation()
    second = make_tenant("second")
    third = make_tenant("third")
    membership_add(tenant=second, user=user("ceo"), role="ceo", actor=Actor.for_system(second, "test"))
    client = signed_in("ceo")
    client.post("/accounts/tenant/", {"tenant": demo["tenant_obj"].pk})
    assert client.get(f"/e/{escalation.pk}/").status_code == 200

    client.post("/accounts/tenant/", {"tenant": second.pk})
    assert client.get(f"/e/{escalation.pk}/").status_code == 404
    assert "Second" in client.get("/").content.decode()

    client.post("/accounts/tenant/", {"tenant": third.pk})  # not a member: refused, stays in "second"
    assert client.session["tenant_id"] == second.pk


def test_totp_enrolment_counts_only_after_a_confirming_code(make_tenant, make_person, client):
    import pyotp

    tenant: Tenant = make_tenant("fresh")
    person = make_person(tenant, "ceo", "newbie")
    SealedTOTPDevice.objects.filter(user=person).delete()
    client.post("/accounts/login/", {"username": "newbie", "password": "correct horse battery"})

    page = client.get("/accounts/authenticator/").content.decode()
    secret = found(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page).replace(" ", "")
    assert "<svg" in page
    assert not SealedTOTPDevice.objects.filter(user=person, confirmed=True).exists()

    bad = client.post("/accounts/authenticator/", {"code": wrong(pyotp.TOTP(secret).now())})
    assert bad.status_code == 400
    assert not SealedTOTPDevice.objects.filter(user=person, confirmed=True).exists()

    good = client.post("/accounts/authenticator/", {"code": pyotp.TOTP(secret).now()})
    assert good.status_code == 302
    assert SealedTOTPDevice.objects.filter(user=person, confirmed=True).count() == 1
    assert "is set up" in client.get("/accounts/authenticator/").content.decode()


def test_five_wrong_passwords_pause_sign_in_with_a_page_that_says_so(demo, client):
    for _ in range(5):
        client.post("/accounts/login/", {"username": "ceo", "password": "wrong"})

    locked = client.post("/accounts/login/", {"username": "ceo", "password": demo["by_name"]["ceo"]["password"]})

    assert locked.status_code == 429
    assert "Sign-in is paused" in locked.content.decode()


def test_hostile_form_input_is_refused_cleanly_never_a_500(raise_escalation, signed_in):
    escalation = raise_escalation()
    client = signed_in("ceo")

    impossible_date = client.post(f"/e/{escalation.pk}/decide/", {
        "decision": "defer", "justification": "x", "otp": "123456", "defer_until": "2026-02-30T10:00"})
    nul_search = client.get("/", {"q": "ORD\x00", "type": "\x00"})
    huge_tenant = client.post("/accounts/tenant/", {"tenant": "9" * 40})
    unicode_digits = client.post("/accounts/tenant/", {"tenant": "١٢"})

    assert impossible_date.status_code == 400
    assert nul_search.status_code == 200
    assert huge_tenant.status_code == unicode_digits.status_code == 302


def test_the_case_page_says_where_an_unacknowledged_case_goes_next(raise_escalation, signed_in):
    case = raise_escalation(naira=None, type="SANCTIONS_MATCH", entity_id="CUS-88")

    page = signed_in("co").get(f"/e/{case.pk}/").content.decode()

    assert re.search(r'data-testid="next-step".*?goes up to the <strong>Senior manager</strong>', page, re.S)


@pytest.mark.parametrize("url", ["/accounts/login/", "/summary/", "/ops/reports/", "/admin/"])
def test_every_html_page_holds_to_the_content_security_policy(url, signed_in):
    from django.test import Client

    response = (Client() if url == "/accounts/login/" else signed_in("ops")).get(url)
    page = response.content.decode()

    assert response.status_code == 200
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert "<style" not in page and not re.search(r'\sstyle="', page)
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", page)


def _approved_with_a_condition(demo, vendor, change_id: str):
    """A medium-risk change a senior manager approved on the condition "Attach the rollback plan"."""
    case = escalation_create(actor=vendor, type="OPERATION_CHANGE", reason="Resize", risk_level="medium",
                             source=SourceRef("dba-tool", "change", change_id))
    sm = Actor(tenant=demo["tenant_obj"], user=user("sm"))
    return escalation_decide(actor=sm, escalation=case, decision="approve", justification="Fine",
                             otp=totp_code(user("sm")), conditions=["Attach the rollback plan"])


def test_an_approver_marks_a_condition_met_on_the_case_page_and_an_outsider_cannot(signed_in, demo, vendor):
    case = _approved_with_a_condition(demo, vendor, "CHG-1")
    cid = case.conditions[0]["id"]

    page = signed_in("sm2").get(f"/e/{case.pk}/").content.decode()
    assert 'data-testid="obligation-form"' in page and "Mark met" in page
    refused = signed_in("analyst").post(f"/e/{case.pk}/conditions/{cid}/", {"action": "met", "text": ""})
    done = signed_in("sm2").post(f"/e/{case.pk}/conditions/{cid}/", {"action": "met", "text": "Plan attached"},
                                 HTTP_HX_REQUEST="true")

    assert refused.status_code in (403, 404)
    assert done.status_code == 200 and "Condition marked met" in done.content.decode()
    case.refresh_from_db()
    assert case.conditions[0]["status"] == "met"


def test_the_queue_card_shows_the_estimated_cost_and_the_execution_window(signed_in, vendor):
    from escalations.intake import ExecutionWindow, Money

    now = timezone.now()
    escalation_create(actor=vendor, type="OPERATION_CHANGE", reason="Resize", risk_level="medium",
                      source=SourceRef("dba-tool", "change", "CHG-2"), estimated_cost=Money(12_000_000, "NGN"),
                      execution_window=ExecutionWindow(now + timedelta(hours=1), now + timedelta(hours=3)))

    page = signed_in("sm").get("/").content.decode()

    assert "est. cost ₦120,000.00" in page
    assert 'data-testid="card-window">Execute between' in page


def test_a_change_with_a_cost_and_no_amount_headlines_its_cost(signed_in, vendor):
    from escalations.intake import Money

    case = escalation_create(actor=vendor, type="OPERATION_CHANGE", reason="Resize", risk_level="medium",
                             source=SourceRef("dba-tool", "change", "CHG-3"), estimated_cost=Money(12_000_000, "NGN"))

    page = signed_in("sm").get(f"/e/{case.pk}/").content.decode()

    assert re.search(r'data-testid="case-amount">₦120,000.00<', page)
    assert "Estimated cost; no amount at stake" in page


def test_a_condition_action_that_names_no_action_is_refused_and_a_bad_link_is_named(signed_in, demo, vendor):
    case = _approved_with_a_condition(demo, vendor, "CHG-2")
    cid = case.conditions[0]["id"]
    sm2 = signed_in("sm2")

    no_action = sm2.post(f"/e/{case.pk}/conditions/{cid}/", {"action": "shred", "text": "x"}, HTTP_HX_REQUEST="true")
    bad_link = sm2.post(f"/e/{case.pk}/conditions/{cid}/", {"action": "evidence", "url": "ftp://files/plan"},
                        HTTP_HX_REQUEST="true")

    assert no_action.status_code == 400 and "Choose add evidence, met or waive." in no_action.content.decode()
    assert bad_link.status_code == 400 and "url:" in bad_link.content.decode()
    case.refresh_from_db()
    assert case.conditions[0]["status"] == "open" and not case.conditions[0]["evidence"]
