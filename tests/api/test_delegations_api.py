"""POST/GET/DELETE /api/v1/delegations (CONTRACT.md section 5), and on_behalf_of on decisions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Delegation
from audit.models import AuditEvent
from tests.api.conftest import ORDER, assert_problem
from tests.conftest import totp_code

pytestmark = pytest.mark.django_db


def period(days: float = 3, start_in: timedelta = timedelta(0)) -> dict:
    start = timezone.now() + start_in
    return {"starts_at": start.isoformat(), "ends_at": (start + timedelta(days=days)).isoformat()}


def test_the_ceo_sets_an_out_of_office_with_a_deputy(api):
    response = api("ceo").post("/delegations", {"delegate": "sm", **period(7), "escalation_types": ["HIGH_VALUE"]})

    assert response.status_code == 201, response.content
    body = response.json()
    assert {"id", "delegator", "delegate", "starts_at", "ends_at", "escalation_types", "status"} <= set(body)
    assert (body["delegator"], body["delegate"], body["status"]) == ("ceo", "sm", "active")
    assert body["escalation_types"] == ["HIGH_VALUE"]
    assert body["starts_at"].endswith(":00Z")  # on the minute
    assert AuditEvent.objects.filter(action="delegation.created", target_id=body["id"]).exists()


def test_away_with_nobody_standing_in(api):
    response = api("ceo").post("/delegations", {"delegate": None, **period(1, timedelta(days=1))})

    assert response.status_code == 201
    assert (response.json()["delegate"], response.json()["status"]) == (None, "scheduled")


def test_both_the_delegator_and_the_delegate_list_it_and_others_do_not(api):
    created = api("ceo").post("/delegations", {"delegate": "sm", **period()}).json()

    assert [d["id"] for d in api("ceo").get("/delegations").json()["results"]] == [created["id"]]
    assert [d["id"] for d in api("sm").get("/delegations").json()["results"]] == [created["id"]]
    assert api("co").get("/delegations").json()["results"] == []
    assert api("sm").get(f"/delegations/{created['id']}").status_code == 200
    assert_problem(api("co").get(f"/delegations/{created['id']}"), 404)


def test_overlapping_periods_are_409(api):
    api("ceo").post("/delegations", {"delegate": "sm", **period(5)})

    body = assert_problem(api("ceo").post("/delegations", {"delegate": "gb", **period(2, timedelta(days=1))}), 409)

    assert "overlap" in body["type"]
    assert Delegation.objects.count() == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"delegate": "ceo"}, "delegate"),
    ({"delegate": "other-sm"}, "delegate"),
    ({"delegate": "nobody-by-that-name"}, "delegate"),
    ({"delegate": "analyst"}, "delegate"),  # does not decide escalations
    ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
    ({"ends_at": (timezone.now() + timedelta(days=91)).isoformat()}, "ends_at"),
    ({"escalation_types": ["NOT_OURS"]}, "escalation_types"),
    ({"starts_at": "tomorrow"}, "starts_at"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_input_is_400_naming_the_field_and_writes_nothing(api, other, body, field):
    response = api("ceo").post("/delegations", {"delegate": "sm", **period(), **body})

    problem = assert_problem(response, 400)
    assert field in problem["errors"]
    assert not Delegation.objects.exists()


def test_ending_your_own_is_allowed_and_someone_elses_is_404(api, other):
    mine = api("ceo").post("/delegations", {"delegate": "sm", **period()}).json()

    assert_problem(api("sm").send("delete", f"/delegations/{mine['id']}"), 404)  # the delegate cannot end it
    assert_problem(api("co").send("delete", f"/delegations/{mine['id']}"), 404)
    ended = api("ceo").send("delete", f"/delegations/{mine['id']}")
    assert ended.status_code == 200 and ended.json()["status"] == "revoked"
    assert_problem(api("ceo").send("delete", f"/delegations/{mine['id']}"), 409)
    assert_problem(api("ceo").send("delete", "/delegations/not-an-id"), 404)


def test_another_tenants_delegation_is_404_even_for_its_operator(api, other):
    from tests.api.conftest import Api

    mine = api("ceo").post("/delegations", {"delegate": "sm", **period()}).json()
    outsider = Api(other["by_name"]["ops"]["api_token"])

    assert_problem(outsider.get(f"/delegations/{mine['id']}"), 404)
    assert_problem(outsider.send("delete", f"/delegations/{mine['id']}"), 404)


def test_an_operator_sets_someones_out_of_office_and_a_colleague_cannot(api):
    created = api("ops").post("/delegations", {"delegator": "ceo", "delegate": "sm", **period()})

    assert created.status_code == 201, created.content
    assert (created.json()["delegator"], created.json()["created_by"]) == ("ceo", "ops")
    assert_problem(api("co").post("/delegations", {"delegator": "co2", "delegate": "sm", **period()}), 403)


def test_an_api_key_has_no_out_of_office(api):
    assert_problem(api("vendor").post("/delegations", {"delegate": "sm", **period()}), 403)


def test_a_decision_by_a_deputy_carries_on_behalf_of(api, demo):
    api("ceo").post("/delegations", {"delegate": "sm", **period()})
    case = api("vendor").post("/escalations", ORDER, key="order-deleg-1").json()
    from accounts.models import User

    sm = User.objects.get(username="sm")
    decided = api("sm").post(f"/escalations/{case['id']}/decisions",
                             {"decision": "approve", "justification": "Standing in for the CEO", "otp": totp_code(sm)})

    assert decided.status_code == 201, decided.content
    decision = decided.json()["decisions"][0]
    assert (decision["decided_by"], decision["on_behalf_of"], decision["role"]) == ("sm", "ceo", "ceo")
    assert api("vendor").get(f"/escalations/{case['id']}").json()["decisions"][0]["on_behalf_of"] == "ceo"


def test_the_deputys_mine_filter_includes_cases_held_for_the_ceo(api):
    api("ceo").post("/delegations", {"delegate": "sm", **period()})
    case = api("vendor").post("/escalations", ORDER, key="order-deleg-2").json()

    listed = api("sm").get("/escalations", {"mine": "1"}).json()

    assert case["id"] in [e["id"] for e in listed["results"]]


def test_the_decisions_export_and_the_pdf_say_on_whose_behalf(api, demo):
    import csv
    import io

    from pypdf import PdfReader

    from accounts.models import User

    api("ceo").post("/delegations", {"delegate": "sm", **period()})
    case = api("vendor").post("/escalations", ORDER, key="order-deleg-3").json()
    sm = User.objects.get(username="sm")
    api("sm").post(f"/escalations/{case['id']}/decisions",
                   {"decision": "approve", "justification": "Standing in", "otp": totp_code(sm)})

    export = api("co").get("/exports/decisions.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode()
                                           if export.streaming else export.content.decode())))
    assert [(r["decided_by"], r["on_behalf_of"]) for r in rows] == [("sm", "ceo")]

    from escalations.models import Escalation
    from reports.pdf import escalation_report_pdf

    pdf = escalation_report_pdf(escalation=Escalation.objects.get(pk=case["id"]), generated_by="co")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert f"on behalf of {User.objects.get(username='ceo').get_full_name()}" in " ".join(text.split())
