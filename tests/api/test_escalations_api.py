"""The escalation endpoints of CONTRACT.md section 3, as a vendor and its approvers use them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable

import pytest

from accounts.actors import Actor
from accounts.models import ApiKey, Tenant, User
from accounts.services import api_key_create
from escalations.models import Escalation
from tests.api.conftest import ORDER, Api, assert_problem
from tests.conftest import totp_code

pytestmark = pytest.mark.django_db

CONTRACT_FIELDS = {
    "id", "tenant", "type", "status", "reason", "risk_level", "urgency", "source", "amount", "payload", "requested_by",
    "route", "current_stage", "assigned_role", "escalation_level", "approvals_required", "approvals_received",
    "conditions", "acknowledged_by", "acknowledged_at", "ack_due_at", "expires_at", "defer_until", "created_at",
    "updated_at", "decided_at", "executed_at", "execution_result", "decisions",
}
DECISION_FIELDS = {"id", "escalation", "decision", "justification", "conditions", "decided_by", "role", "stage",
                   "self_approved", "decided_at"}


def create(api: Api, body: dict | None = None, key: str | None = None) -> dict:
    response = api.post("/escalations", body or ORDER, key=key or str(uuid.uuid4()))
    assert response.status_code == 201, response.content
    return response.json()


def otp(username: str) -> str:
    return totp_code(User.objects.get(username=username))


# --- check -----------------------------------------------------------------------------------------

def test_check_tells_a_vendor_a_large_order_needs_the_ceo_and_creates_nothing(api):
    response = api("vendor").post("/escalations/check", {"amount": {"value_minor": 250_000_000, "currency": "NGN"}})

    assert response.status_code == 200
    body = response.json()
    assert body["requires_escalation"] is True
    assert body["type"] == "HIGH_VALUE"
    assert body["approvals_required"] == 1
    assert body["route"][0]["role"] == "ceo"
    assert not Escalation.objects.exists()


def test_check_says_a_small_order_needs_no_escalation(api):
    body = api("vendor").post("/escalations/check", {"amount": {"value_minor": 5_000, "currency": "NGN"}}).json()

    assert body["requires_escalation"] is False
    assert body["type"] is None


def test_check_refuses_a_float_amount(api):
    response = api("vendor").post("/escalations/check", {"amount": {"value_minor": 2.5, "currency": "NGN"}})

    assert "amount.value_minor" in assert_problem(response, 400)["errors"]


def test_check_without_credentials_is_401(api):
    assert_problem(api(None).post("/escalations/check", {}), 401)


# --- create ----------------------------------------------------------------------------------------

def test_a_vendor_creates_an_escalation_with_exactly_the_contract_fields(api):
    body = create(api("vendor"))

    assert set(body) >= CONTRACT_FIELDS
    assert body["tenant"] == "demo"
    assert body["type"] == "HIGH_VALUE"
    assert body["status"] == "pending"
    assert body["amount"] == {"value_minor": 250_000_000, "currency": "NGN"}
    assert body["source"] == {"system": "shop", "entity_type": "order", "entity_id": "ORD-1001", "url": None}
    assert body["requested_by"] == "buyer@shop.example"
    assert body["route"] == [{"stage": 0, "role": "ceo", "roles": ["ceo"], "people": [], "approvals_required": 1,
                              "approvals_received": 0, "status": "open"}]
    assert body["assigned_role"] == "ceo"
    assert body["decisions"] == []
    assert body["waiting_for"] == {"role": "ceo", "approvals_missing": 1}


def test_a_low_risk_change_that_needs_no_approval_is_created_approved(api):
    body = create(api("vendor"), {"type": "OPERATION_CHANGE", "risk_level": "low", "reason": "Add a column",
                                  "source": {"system": "dba", "entity_type": "change", "entity_id": "CHG-1"}})

    assert body["status"] == "approved"
    assert body["approvals_required"] == 0


@pytest.mark.parametrize("body", [
    ORDER,
    {"type": "OPERATION_CHANGE", "risk_level": "low", "reason": "Add a column",
     "source": {"system": "dba", "entity_type": "change", "entity_id": "CHG-1"}, "payload": {"z": 1, "a": [1.5, None]}},
], ids=["pending", "approved-at-once"])
def test_the_201_body_is_what_the_escalation_reads_as_afterwards(api, body):
    """The create's body is built from the rows it wrote, not read back: it must still say exactly what a
    GET of the committed escalation says (a stage, a timestamp or a default that differed would show)."""
    vendor = api("vendor")
    created = create(vendor, body)

    detail = vendor.get(f"/escalations/{created['id']}").json()
    assert created == {k: v for k, v in detail.items() if k != "history"}


def test_create_without_an_idempotency_key_is_refused(api):
    response = api("vendor").post("/escalations", ORDER)

    assert "Idempotency-Key" in assert_problem(response, 400)["errors"]
    assert not Escalation.objects.exists()


@pytest.mark.parametrize("amount", [2.5, 250000000.0, "250000000", True])
def test_create_refuses_an_amount_that_is_not_a_json_integer(api, amount):
    body = {**ORDER, "amount": {"value_minor": amount, "currency": "NGN"}}

    problem = assert_problem(api("vendor").post("/escalations", body, key=str(uuid.uuid4())), 400)

    assert list(problem["errors"]) == ["amount.value_minor"]


@pytest.mark.parametrize("change, field", [
    ({"ammount": 1}, "ammount"),
    ({"risk_level": "extreme"}, "risk_level"),
    ({"urgency": 3}, "urgency"),
    ({"reason": 42}, "reason"),
    ({"reason": "   "}, "reason"),
    ({"source": {"system": "shop", "entity_type": "order"}}, "source.entity_id"),
    ({"source": {**ORDER["source"], "extra": 1}}, "source.extra"),
    ({"type": "NO_SUCH_TYPE"}, "type"),
    ({"flags": ["ok", 3]}, "flags.1"),
    ({"payload": [1, 2]}, "payload"),
    ({"requested_by": "not-an-email"}, "requested_by"),
])
def test_create_names_each_invalid_field(api, change, field):
    response = api("vendor").post("/escalations", {**ORDER, **change}, key=str(uuid.uuid4()))

    assert field in assert_problem(response, 400)["errors"]


def test_create_without_a_matching_trigger_is_unprocessable(api):
    body = {**ORDER, "amount": {"value_minor": 100, "currency": "NGN"}}

    assert_problem(api("vendor").post("/escalations", body, key=str(uuid.uuid4())), 422)


def test_a_person_without_create_manual_may_not_create(api):
    assert_problem(api("analyst").post("/escalations", ORDER, key=str(uuid.uuid4())), 403)


def test_create_with_an_unknown_key_is_401(api):
    response = Api("tgk_not-a-real-key").post("/escalations", ORDER, key=str(uuid.uuid4()))

    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


# --- list --------------------------------------------------------------------------------------------

def test_a_vendor_lists_only_the_escalations_it_created(api, demo):
    mine = create(api("vendor"))
    _, other_secret = api_key_create(tenant=demo["tenant_obj"], name="screening",
                                     actor=Actor.for_system(demo["tenant_obj"], "test"))
    create(Api(other_secret))

    results = api("vendor").get("/escalations").json()["results"]

    assert [e["id"] for e in results] == [mine["id"]]


def test_an_approver_with_view_all_sees_every_escalation_and_mine_narrows_to_their_role(api):
    create(api("vendor"))
    create(api("vendor"), {**ORDER, "type": "SMR", "amount": None})

    all_ = api("sm").get("/escalations").json()["results"]
    mine = api("ceo").get("/escalations", {"mine": "1"}).json()["results"]

    assert len(all_) == 2
    assert [e["type"] for e in mine] == ["HIGH_VALUE"]


def test_list_filters_by_status_type_and_source_entity(api):
    create(api("vendor"))
    create(api("vendor"), {**ORDER, "source": {**ORDER["source"], "entity_id": "ORD-2"}})

    by_entity = api("ceo").get("/escalations", {"source_entity_id": "ORD-2"}).json()["results"]
    approved = api("ceo").get("/escalations", {"status": "approved"}).json()["results"]

    assert [e["source"]["entity_id"] for e in by_entity] == ["ORD-2"]
    assert approved == []


def test_list_refuses_an_unknown_status(api):
    assert "status" in assert_problem(api("ceo").get("/escalations", {"status": "nope"}), 400)["errors"]


def test_list_pages_with_a_stable_cursor_most_urgent_first(api):
    created = [create(api("vendor"), {**ORDER, "source": {**ORDER["source"], "entity_id": f"ORD-{i}"}})
               for i in range(5)]
    Escalation.objects.filter(pk=created[0]["id"]).update(next_deadline_at=None)  # closed: sorts last

    seen, url = [], "/escalations?limit=2"
    while url:
        page = api("ceo").get(url.split("/api/v1", 1)[-1]).json()
        seen += [e["id"] for e in page["results"]]
        url = page["next"]

    assert len(seen) == 5 and len(set(seen)) == 5
    assert seen[-1] == created[0]["id"]


def test_list_refuses_a_misspelt_filter_instead_of_ignoring_it(api):
    assert "stauts" in assert_problem(api("ceo").get("/escalations", {"stauts": "pending"}), 400)["errors"]


def test_list_refuses_a_forged_cursor(api):
    assert_problem(api("ceo").get("/escalations", {"cursor": "garbage"}), 400)


def test_a_person_without_view_rights_may_not_list(api):
    assert_problem(api("analyst").get("/escalations"), 403)


def test_list_serializes_in_a_constant_number_of_queries(api, django_assert_max_num_queries):
    for i in range(12):
        create(api("vendor"), {**ORDER, "source": {**ORDER["source"], "entity_id": f"ORD-{i}"}})
    client = api("ceo")

    with django_assert_max_num_queries(12):
        assert len(client.get("/escalations", {"limit": 100}).json()["results"]) == 12


# --- detail -------------------------------------------------------------------------------------------

def test_detail_includes_decisions_and_history(api):
    escalation = create(api("vendor"))
    api("ceo").post(f"/escalations/{escalation['id']}/decisions",
                    {"decision": "approve", "justification": "Known customer", "otp": otp("ceo")})

    body = api("vendor").get(f"/escalations/{escalation['id']}").json()

    assert body["status"] == "approved"
    assert set(body["decisions"][0]) >= DECISION_FIELDS
    assert body["decisions"][0]["decided_by"] == "ceo"
    assert body["decisions"][0]["escalation"] == escalation["id"]
    assert [h["action"] for h in body["history"]] == ["escalation.created", "decision.recorded"]


def test_another_tenants_escalation_is_404_never_403(api, other):
    escalation = create(api("vendor"))
    outsider_vendor, outsider_ceo = Api(other["api_keys"]["vendor"]), Api(other["by_name"]["ceo"]["api_token"])

    assert_problem(outsider_vendor.get(f"/escalations/{escalation['id']}"), 404)
    assert_problem(outsider_ceo.get(f"/escalations/{escalation['id']}"), 404)
    assert_problem(outsider_ceo.post(f"/escalations/{escalation['id']}/acknowledge"), 404)
    assert_problem(outsider_vendor.post(f"/escalations/{escalation['id']}/cancel", {}), 404)
    assert outsider_ceo.get("/escalations").json()["results"] == []


def test_a_malformed_id_is_404(api):
    assert_problem(api("ceo").get("/escalations/not-a-uuid"), 404)


def test_detail_without_credentials_is_401(api):
    assert_problem(api(None).get(f"/escalations/{uuid.uuid4()}"), 401)


# --- acknowledge --------------------------------------------------------------------------------------

def test_the_assigned_role_acknowledges(api):
    escalation = create(api("vendor"))

    response = api("ceo").post(f"/escalations/{escalation['id']}/acknowledge")

    assert response.status_code == 200
    assert response.json()["status"] == "acknowledged"
    assert response.json()["acknowledged_by"] == "ceo"
    assert_problem(api("ceo").post(f"/escalations/{escalation['id']}/acknowledge"), 409)


def test_another_role_or_a_vendor_may_not_acknowledge(api):
    escalation = create(api("vendor"))

    assert_problem(api("sm").post(f"/escalations/{escalation['id']}/acknowledge"), 403)
    assert_problem(api("vendor").post(f"/escalations/{escalation['id']}/acknowledge"), 403)


def test_acknowledge_refuses_a_body_with_fields(api):
    escalation = create(api("vendor"))

    assert_problem(api("ceo").post(f"/escalations/{escalation['id']}/acknowledge", {"note": "x"}), 400)


# --- decisions ----------------------------------------------------------------------------------------

def test_the_ceo_approves_with_a_fresh_code_and_gets_the_escalation_back(api):
    escalation = create(api("vendor"))

    response = api("ceo").post(f"/escalations/{escalation['id']}/decisions", {
        "decision": "approve", "justification": "Known customer", "conditions": ["Ship after payment"],
        "otp": otp("ceo")})

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "approved"
    assert [(c["text"], c["status"]) for c in body["conditions"]] == [("Ship after payment", "open")]
    assert body["decisions"][0]["self_approved"] is False


@pytest.mark.parametrize("change, field", [
    ({"justification": "  "}, "justification"),
    ({"otp": None}, "otp"),
    ({"otp": "12ab56"}, "otp"),
    ({"decision": "maybe"}, "decision"),
    ({"decision": "defer"}, "defer_until"),
])
def test_a_decision_needs_valid_fields(api, change, field):
    escalation = create(api("vendor"))
    body = {"decision": "approve", "justification": "ok", "otp": "123456", **change}
    body = {k: v for k, v in body.items() if v is not None}

    response = api("ceo").post(f"/escalations/{escalation['id']}/decisions", body)

    assert field in assert_problem(response, 400)["errors"]


def test_a_wrong_code_is_403_and_another_role_is_403(api):
    escalation = create(api("vendor"))

    assert_problem(api("ceo").post(f"/escalations/{escalation['id']}/decisions",
                                   {"decision": "approve", "justification": "ok", "otp": "000000"}), 403)
    assert_problem(api("sm").post(f"/escalations/{escalation['id']}/decisions",
                                  {"decision": "approve", "justification": "ok", "otp": otp("sm")}), 403)


def decide_and_compare_with_detail(api: Callable[[str | None], Api], who: str, escalation_id: str, body: dict) -> dict:
    """POST a decision; its 201 body must be exactly what GET then shows (without the history)."""
    response = api(who).post(f"/escalations/{escalation_id}/decisions", {**body, "otp": otp(who)})
    assert response.status_code == 201, response.content
    detail = api("ceo").get(f"/escalations/{escalation_id}").json()
    detail.pop("history")
    assert response.json() == detail
    return response.json()


def test_the_decision_response_is_the_escalation_as_committed_through_stages_and_deferrals(api):
    escalation = create(api("vendor"), {**ORDER, "type": "HIGH_RISK_CDD"})
    path_id = escalation["id"]

    opened = decide_and_compare_with_detail(api, "co", path_id, {
        "decision": "approve", "justification": "File complete", "conditions": ["Refresh KYC yearly"]})
    # Within the case's expiry (deferrals are bounded by it), written with an offset and microseconds.
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).replace(microsecond=123456)
    deferred = decide_and_compare_with_detail(api, "sm", path_id, {
        "decision": "defer", "justification": "Waiting for the source of funds",
        "defer_until": until.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat()})
    approved = decide_and_compare_with_detail(api, "sm", path_id, {
        "decision": "approve", "justification": "Source of funds seen"})

    assert (opened["current_stage"], opened["status"], opened["route"][0]["status"]) == (1, "pending", "complete")
    assert (deferred["status"], deferred["defer_until"]) == ("deferred", until.isoformat().replace("+00:00", "Z"))
    assert approved["status"] == "approved"
    assert [d["decision"] for d in approved["decisions"]] == ["approve", "defer", "approve"]
    assert [c["text"] for c in approved["conditions"]] == ["Refresh KYC yearly"]


def test_the_decision_response_shows_a_partial_quorum_a_person_requester_and_the_acknowledger(api):
    change = create(api("vendor"), {**ORDER, "type": "OPERATION_CHANGE", "risk_level": "high"})
    partial = decide_and_compare_with_detail(api, "sm", change["id"], {"decision": "approve", "justification": "ok"})
    closed = decide_and_compare_with_detail(api, "sm2", change["id"], {"decision": "approve", "justification": "ok"})
    assert (partial["approvals_received"], partial["status"]) == (1, "pending")
    assert (closed["approvals_received"], closed["status"]) == (2, "approved")

    manual = create(api("co"))
    assert api("ceo").post(f"/escalations/{manual['id']}/acknowledge").status_code == 200
    rejected = decide_and_compare_with_detail(api, "ceo", manual["id"], {"decision": "reject", "justification": "no"})
    assert (rejected["status"], rejected["acknowledged_by"]) == ("rejected", "ceo")
    assert rejected["requester"] == {"type": "user", "name": "co"}


def test_a_decision_on_another_tenants_or_a_malformed_id_is_404(api, other):
    escalation = create(api("vendor"))
    outsider_ceo = Api(other["by_name"]["ceo"]["api_token"])

    assert_problem(outsider_ceo.post(f"/escalations/{escalation['id']}/decisions", {
        "decision": "approve", "justification": "ok", "otp": otp("other-ceo")}), 404)
    assert_problem(api("ceo").post("/escalations/not-a-uuid/decisions", {
        "decision": "approve", "justification": "ok", "otp": otp("ceo")}), 404)
    assert Escalation.objects.get(pk=escalation["id"]).status == "pending"


def test_a_decision_on_a_final_escalation_is_409(api):
    escalation = create(api("vendor"))
    api("ceo").post(f"/escalations/{escalation['id']}/cancel", {})
    api("vendor").post(f"/escalations/{escalation['id']}/cancel", {})

    response = api("ceo").post(f"/escalations/{escalation['id']}/decisions",
                               {"decision": "reject", "justification": "no", "otp": otp("ceo")})

    assert_problem(response, 409)


# --- cancel and execution --------------------------------------------------------------------------------

def test_only_the_requester_cancels(api):
    escalation = create(api("vendor"))

    assert_problem(api("ceo").post(f"/escalations/{escalation['id']}/cancel", {}), 403)
    response = api("vendor").post(f"/escalations/{escalation['id']}/cancel", {"reason": "Customer cancelled"})

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert_problem(api("vendor").post(f"/escalations/{escalation['id']}/cancel", {}), 409)


def test_the_requester_reports_execution_of_an_approved_escalation(api):
    escalation = create(api("vendor"))
    assert_problem(api("vendor").post(f"/escalations/{escalation['id']}/execution", {"result": {}}), 409)
    api("ceo").post(f"/escalations/{escalation['id']}/decisions",
                    {"decision": "approve", "justification": "ok", "otp": otp("ceo")})

    assert "result" in assert_problem(
        api("vendor").post(f"/escalations/{escalation['id']}/execution", {"result": "shipped"}), 400)["errors"]
    response = api("vendor").post(f"/escalations/{escalation['id']}/execution", {"result": {"shipment": "SHP-9"}})

    assert response.status_code == 200
    assert response.json()["status"] == "executed"
    assert response.json()["execution_result"] == {"shipment": "SHP-9"}


def test_a_second_key_of_the_same_tenant_cannot_touch_the_first_keys_escalation(api, demo):
    escalation = create(api("vendor"))
    _, secret = api_key_create(tenant=demo["tenant_obj"], name="other-system",
                               actor=Actor.for_system(demo["tenant_obj"], "test"))

    assert_problem(Api(secret).post(f"/escalations/{escalation['id']}/cancel", {}), 404)
    assert ApiKey.objects.filter(tenant=Tenant.objects.get(slug="demo")).count() == 2


# --- the documented shape ------------------------------------------------------------------------------

def _documented(schema: dict, path: str, method: str, status: str) -> dict:
    ref = schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_the_documented_escalation_has_exactly_the_keys_of_a_real_response(api, client):
    schema = json.loads(client.get("/api/schema/", HTTP_ACCEPT="application/json").content)
    escalation = create(api("vendor"))
    decided = api("ceo").post(f"/escalations/{escalation['id']}/decisions", {
        "decision": "approve", "justification": "Known customer", "otp": otp("ceo")}).json()
    detail = api("vendor").get(f"/escalations/{escalation['id']}").json()

    documented = _documented(schema, "/api/v1/escalations", "post", "201")
    assert list(documented["properties"]) == list(escalation) == list(decided)
    decision_ref = documented["properties"]["decisions"]["items"]["$ref"].rsplit("/", 1)[-1]
    assert list(schema["components"]["schemas"][decision_ref]["properties"]) == list(decided["decisions"][0])
    documented_detail = _documented(schema, "/api/v1/escalations/{escalation_id}", "get", "200")
    assert list(documented_detail["properties"]) == list(detail)
    history_ref = documented_detail["properties"]["history"]["items"]["$ref"].rsplit("/", 1)[-1]
    assert list(schema["components"]["schemas"][history_ref]["properties"]) == list(detail["history"][0])
