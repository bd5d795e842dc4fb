"""PUT /policies/{type} takes back the document GET returned (CONTRACT.md section 5 "Round trips")."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from escalations.models import Policy
from tests.api.conftest import assert_problem
from tests.approvals.test_concurrency import run_at_once

pytestmark = pytest.mark.django_db


def test_the_document_get_returned_is_accepted_back_unchanged(api):
    got = api("ops").get("/policies/OPERATION_CHANGE")

    put = api("ops").put("/policies/OPERATION_CHANGE", got.json())

    assert put.status_code == 200, put.content
    assert put.json()["version"] == got.json()["version"] + 1
    assert put.json()["stages"] == got.json()["stages"]


def test_get_sends_an_etag_that_names_the_version(api):
    response = api("ops").get("/policies/HIGH_VALUE")

    assert response["ETag"] == f'"v{response.json()["version"]}"'


def test_a_changed_document_is_saved_and_its_effective_approvals_follow(api):
    document = api("ops").get("/policies/HIGH_VALUE").json()
    document["approvals_by_risk"] = {"low": 0, "medium": 1, "high": 1}

    saved = api("ops").put("/policies/HIGH_VALUE", document).json()

    assert saved["effective_approvals"] == [{"low": 0, "medium": 1, "high": 1}]


def test_a_stale_version_is_409_and_writes_nothing(api):
    document = api("ops").get("/policies/SMR").json()
    assert api("ops").put("/policies/SMR", {"expiry_seconds": 7200}).status_code == 200

    document["expiry_seconds"] = 9999
    body = assert_problem(api("ops").put("/policies/SMR", document), 409)

    assert "version" in body["errors"]
    assert Policy.objects.get(tenant__slug="demo", type="SMR").expiry_seconds == 7200


def test_a_stale_if_match_is_409(api):
    etag = api("ops").get("/policies/SMR")["ETag"]
    api("ops").put("/policies/SMR", {"expiry_seconds": 7200})

    assert_problem(api("ops").put("/policies/SMR", {"expiry_seconds": 600}, headers={"If-Match": etag}), 409)


def test_a_current_if_match_is_accepted(api):
    etag = api("ops").get("/policies/SMR")["ETag"]

    response = api("ops").put("/policies/SMR", {"expiry_seconds": 600}, headers={"If-Match": etag})

    assert response.status_code == 200
    assert response["ETag"] == '"v2"'


def test_the_roles_only_route_view_can_be_edited_in_the_document(api):
    document = api("ops").get("/policies/HIGH_RISK_CDD").json()
    document["route"] = [["compliance_officer"], ["governing_body"]]

    saved = api("ops").put("/policies/HIGH_RISK_CDD", document).json()

    assert [s["roles"] for s in saved["stages"]] == [["compliance_officer"], ["governing_body"]]


def test_route_and_stages_changed_differently_are_400_naming_route(api):
    document = api("ops").get("/policies/HIGH_RISK_CDD").json()
    document["route"] = [["governing_body"]]
    document["stages"] = [{"roles": ["ceo"], "approvals_required": 1}]

    assert "route" in assert_problem(api("ops").put("/policies/HIGH_RISK_CDD", document), 400)["errors"]


def test_approvals_by_risk_that_no_stage_uses_is_400_naming_it(api):
    document = api("ops").get("/policies/HIGH_VALUE").json()
    document["stages"] = [{"roles": ["ceo"], "approvals_required": 1}]
    document["approvals_by_risk"] = {"low": 1, "medium": 1, "high": 2}

    body = assert_problem(api("ops").put("/policies/HIGH_VALUE", document), 400)

    assert "approvals_by_risk" in body["errors"]


@pytest.mark.parametrize("stages, field", [
    ([{"roles": ["ceo"], "approvals_required": 2}], "route[0].approvals_required"),  # one CEO in the demo
    ([{"roles": ["wizard"]}], "route[0].roles"),
    ([{"roles": ["ceo"], "when": {"fact": "amount", "op": ">=", "value": 5, "currency": "NGN"}}], "route"),
    ([{"roles": ["ceo"]}, {"roles": ["governing_body"], "when": {"fact": "risk_level", "op": "=", "value": 3}}],
     "route[1].when.value"),
    ([{"roles": ["ceo"]}, {"roles": ["governing_body"], "when": {"fact": "amount", "op": ">=", "value": "lots",
                                                                  "currency": "NGN"}}], "route[1].when.value"),
])
def test_an_invalid_route_is_400_naming_the_field_and_saves_nothing(api, stages, field):
    body = assert_problem(api("ops").put("/policies/HIGH_VALUE", {"stages": stages, "name": "Changed"}), 400)

    assert field in body["errors"], body
    assert Policy.objects.get(tenant__slug="demo", type="HIGH_VALUE").name == "High-value order"


def test_a_conditional_stage_shows_in_the_dry_run_only_when_it_holds(api):
    api("ops").put("/policies/HIGH_VALUE", {"stages": [
        {"roles": ["ceo"], "approvals_required": None},
        {"roles": ["governing_body"], "approvals_required": 1,
         "when": {"fact": "amount", "op": ">=", "value": 500_000_000, "currency": "NGN"}}]})

    small = api("vendor").post("/escalations/check", {"amount": {"value_minor": 200_000_000, "currency": "NGN"}})
    big = api("vendor").post("/escalations/check", {"amount": {"value_minor": 600_000_000, "currency": "NGN"}})

    assert [s["roles"] for s in small.json()["route"]] == [["ceo"]]
    assert [s["roles"] for s in big.json()["route"]] == [["ceo"], ["governing_body"]]


def test_a_created_escalation_pins_its_evaluated_route(api):
    api("ops").put("/policies/HIGH_VALUE", {"stages": [
        {"roles": ["ceo"]}, {"roles": ["governing_body"], "when": {"fact": "payload.channel", "op": "=",
                                                                   "value": "export"}}]})
    response = api("vendor").post("/escalations", {
        "reason": "Export order", "source": {"system": "shop", "entity_type": "order", "entity_id": "ORD-9"},
        "amount": {"value_minor": 200_000_000, "currency": "NGN"}, "payload": {"channel": "export"}}, key="k-pin")

    assert response.status_code == 201, response.content
    assert [s["role"] for s in response.json()["route"]] == ["ceo", "governing_body"]
    from escalations.models import Escalation
    plan = Escalation.objects.get(pk=response.json()["id"]).policy_snapshot["route_plan"]
    assert [s["applies"] for s in plan] == [True, True]
    assert plan[1]["condition"] == "payload.channel = export"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_puts_from_the_same_version_one_wins_one_is_409(demo, settings):
    settings.RATE_LIMIT_PER_MINUTE = 0
    token = demo["by_name"]["ops"]["api_token"]

    def put(expiry: int):
        def call():
            response = Client().put("/api/v1/policies/SMR", data=json.dumps({"version": 1, "expiry_seconds": expiry}),
                                    content_type="application/json", headers={"Authorization": f"Bearer {token}"})
            return response.status_code
        return call

    results = run_at_once([put(3600), put(7200)])

    assert sorted(results) == [200, 409]
    assert Policy.objects.get(tenant__slug="demo", type="SMR").version == 2
