"""The approver's actions on the case page are Django forms (dashboard.forms), answered in the one shape of every
case action (dashboard.views.case_action): refused input is a 400 that keeps what was typed, next to its field."""

from __future__ import annotations

from accounts.models import OtpChallenge
from approvals.models import Decision
from escalations.models import EscalationStatus
from tests.conftest import totp_code
from tests.dashboard.conftest import user


def test_a_decision_without_a_choice_is_refused_next_to_the_choices_and_keeps_what_was_typed(
        raise_escalation, signed_in):
    escalation = raise_escalation()

    response = signed_in("ceo").post(f"/e/{escalation.pk}/decide/", {
        "justification": "Checked the buyer's history", "conditions": "Ship in two lots",
        "otp": totp_code(user("ceo"))}, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert response.status_code == 400
    assert "Choose what you decide." in page
    assert "Checked the buyer&#x27;s history" in page and "Ship in two lots" in page
    assert not Decision.objects.exists()
    escalation.refresh_from_db()
    assert escalation.status == EscalationStatus.PENDING


def test_a_decision_made_with_conditions_records_them_one_per_line(raise_escalation, signed_in):
    escalation = raise_escalation()

    response = signed_in("ceo").post(f"/e/{escalation.pk}/decide/", {
        "decision": "approve_conditions", "justification": "Fine with limits", "otp": totp_code(user("ceo")),
        "conditions": "Ship in two lots\n\n  Insure the second  \n"})

    assert response.status_code == 302
    decision = Decision.objects.get()
    assert decision.decision == "approve" and decision.conditions == ["Ship in two lots", "Insure the second"]


def test_a_code_asked_for_on_an_unknown_channel_is_refused_where_the_code_is_typed(raise_escalation, signed_in):
    escalation = raise_escalation()

    response = signed_in("ceo").post(f"/e/{escalation.pk}/send-code/", {"channel": "fax"}, HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="e-otp"' in page and "fax is not one of the available choices" in page
    assert not OtpChallenge.objects.exists()
