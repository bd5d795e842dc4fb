"""Change management through the API: cost, execution windows, templates (standard changes) and obligations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from escalations.demo import DEMO_TEMPLATES
from escalations.models import Escalation
from notifications.models import OutboxEvent
from tests.api.conftest import Api, assert_problem
from tests.conftest import totp_code

pytestmark = pytest.mark.django_db

CHANGE: dict[str, Any] = {
    "type": "OPERATION_CHANGE", "reason": "Upgrade the orders database (RDS) to 15.5", "risk_level": "medium",
    "source": {"system": "dba-tool", "entity_type": "change", "entity_id": "CHG-77"},
    "estimated_cost": {"value_minor": 12_000_000, "currency": "NGN"},
}
STANDARD_CHANGE: dict[str, Any] = {
    "name": "RDS minor version upgrade", "type": "OPERATION_CHANGE",
    "defaults": {"reason": "Minor engine upgrade in the maintenance window", "risk_level": "low",
                 "justification": "Standard change SC-12", "payload": {"runbook": "RB-7"}},
    "pre_approved": True, "limits": {"max_amount_minor": 50_000_000, "max_risk_level": "medium"},
}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def create(api: Api, body: dict[str, Any]) -> Any:
    return api.post("/escalations", body, key=str(uuid.uuid4()))


def approve(api: Any, case: dict[str, Any], who: str = "sm", **extra: Any) -> dict[str, Any]:
    response = api(who).post(f"/escalations/{case['id']}/decisions", {
        "decision": "approve", "justification": "Tested on staging", "otp": totp_code(User.objects.get(username=who)),
        **extra})
    assert response.status_code == 201, response.content
    return response.json()


# --- cost -----------------------------------------------------------------------------------------------

def test_a_change_carries_its_estimated_cost_and_after_execution_its_actual_cost_and_variance(api):
    case = create(api("vendor"), CHANGE).json()
    assert case["estimated_cost"] == {"value_minor": 12_000_000, "currency": "NGN"}
    assert case["actual_cost"] is None and case["cost_variance"] is None

    approve(api, case)
    response = api("vendor").post(f"/escalations/{case['id']}/execution", {
        "result": {"done": True}, "actual_cost": {"value_minor": 13_500_000, "currency": "NGN"}})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "executed"
    assert body["actual_cost"] == {"value_minor": 13_500_000, "currency": "NGN"}
    assert body["cost_variance"] == {"value_minor": 1_500_000, "currency": "NGN"}
    executed = OutboxEvent.objects.get(type="escalation.executed", aggregate_id=case["id"])
    assert executed.data["actual_cost"] == {"value_minor": 13_500_000, "currency": "NGN"}


def test_a_cost_in_another_currency_than_the_amount_is_accepted_because_it_is_stated(api):
    body = {**CHANGE, "amount": {"value_minor": 500_000, "currency": "NGN"},
            "estimated_cost": {"value_minor": 120_000, "currency": "USD"}}

    case = create(api("vendor"), body).json()

    assert case["amount"]["currency"] == "NGN" and case["estimated_cost"]["currency"] == "USD"


@pytest.mark.parametrize("cost, field", [
    ({"value_minor": 12.5, "currency": "NGN"}, "estimated_cost.value_minor"),
    ({"value_minor": -1, "currency": "NGN"}, "estimated_cost.value_minor"),
    ({"value_minor": 100}, "estimated_cost.currency"),
    ({"value_minor": 100, "currency": "naira"}, "estimated_cost.currency"),
])
def test_a_malformed_estimated_cost_is_400_naming_the_field_and_creates_nothing(api, cost, field):
    response = create(api("vendor"), {**CHANGE, "estimated_cost": cost})

    body = assert_problem(response, 400)
    assert any(key.startswith(field) for key in body["errors"]), body["errors"]
    assert not Escalation.objects.exists()


def test_check_validates_the_estimated_cost_too(api):
    response = api("vendor").post("/escalations/check", {"type": "OPERATION_CHANGE",
                                                         "estimated_cost": {"value_minor": "1", "currency": "NGN"}})

    assert_problem(response, 400)
    ok = api("vendor").post("/escalations/check", {"type": "OPERATION_CHANGE",
                                                   "estimated_cost": {"value_minor": 1, "currency": "NGN"}})
    assert ok.status_code == 200


# --- execution window -------------------------------------------------------------------------------------

def test_execution_before_the_window_is_409_with_the_window_and_inside_it_succeeds(api):
    now = timezone.now()
    window = {"starts_at": iso(now + timedelta(hours=1)), "ends_at": iso(now + timedelta(hours=3))}
    case = create(api("vendor"), {**CHANGE, "execution_window": window}).json()
    assert case["execution_window"] == window

    approved = approve(api, case)
    assert approved["approval_expires_at"] == window["ends_at"]  # no TTL on the policy: the window's end

    early = api("vendor").post(f"/escalations/{case['id']}/execution", {"result": {}})
    problem = assert_problem(early, 409)
    assert problem["type"].endswith("outside-execution-window")
    assert problem["execution_window"] == window

    with time_machine.travel(now + timedelta(hours=2), tick=False):
        inside = api("vendor").post(f"/escalations/{case['id']}/execution", {"result": {"migrated": True}})
    assert inside.status_code == 200, inside.content
    assert inside.json()["status"] == "executed"


def test_the_policy_ttl_makes_an_approval_lapse_before_the_window_ends(api):
    assert api("ops").put("/policies/OPERATION_CHANGE", {"approval_ttl_seconds": 3600}).status_code == 200
    now = timezone.now()
    window = {"starts_at": iso(now), "ends_at": iso(now + timedelta(hours=6))}
    case = create(api("vendor"), {**CHANGE, "execution_window": window}).json()

    approved = approve(api, case)

    lapses = datetime.fromisoformat(approved["approval_expires_at"])
    assert timedelta(minutes=59) < lapses - now < timedelta(minutes=61)
    with time_machine.travel(lapses + timedelta(seconds=1), tick=False):
        late = api("vendor").post(f"/escalations/{case['id']}/execution", {"result": {}})
    problem = assert_problem(late, 409)
    assert problem["deadline"] == "approval_expires_at"
    after = api("vendor").get(f"/escalations/{case['id']}").json()
    assert (after["status"], after["expiry_reason"]) == ("expired", "approval_lapsed")


@pytest.mark.parametrize("window, field", [
    ({"starts_at": 2, "ends_at": 1}, "execution_window.ends_at"),  # end before start
    ({"starts_at": -3, "ends_at": -1}, "execution_window.ends_at"),  # in the past
    ({"starts_at": 1, "ends_at": 24 * 40}, "execution_window"),  # longer than the policy's 30 days
])
def test_a_bad_window_is_400_naming_the_field_and_creates_nothing(api, window, field):
    now = timezone.now()
    body = {**CHANGE, "execution_window": {k: iso(now + timedelta(hours=h)) for k, h in window.items()}}

    problem = assert_problem(create(api("vendor"), body), 400)

    assert field in problem["errors"], problem["errors"]
    assert not Escalation.objects.exists()


# --- templates ---------------------------------------------------------------------------------------

def test_operators_manage_templates_and_a_get_document_goes_back_unchanged(api):
    created = api("ops").put("/templates/rds-minor", STANDARD_CHANGE)
    assert created.status_code == 201, created.content
    assert created.json()["version"] == 1

    document = api("ops").get("/templates/rds-minor").json()
    again = api("ops").put("/templates/rds-minor", document)

    assert again.status_code == 200 and again.json()["version"] == 2
    assert [t["slug"] for t in api("vendor").get("/templates").json()["results"]] == sorted(
        ["rds-minor", *(t["slug"] for t in DEMO_TEMPLATES)])
    assert_problem(api("sm").put("/templates/rds-minor", STANDARD_CHANGE), 403)
    assert AuditEvent.objects.filter(action="template.changed", target_id="rds-minor").count() == 2


def test_a_template_with_unknown_defaults_or_type_is_400(api):
    problem = assert_problem(api("ops").put("/templates/x", {**STANDARD_CHANGE, "defaults": {"colour": "red"}}), 400)
    assert "defaults" in problem["errors"]
    problem = assert_problem(api("ops").put("/templates/x", {**STANDARD_CHANGE, "type": "NO_SUCH"}), 400)
    assert "type" in problem["errors"]


def test_a_pre_approved_template_within_its_limits_is_approved_at_once_as_that_version(api):
    api("ops").put("/templates/rds-minor", STANDARD_CHANGE)
    body = {"template": "rds-minor", "source": CHANGE["source"],
            "estimated_cost": {"value_minor": 10_000_000, "currency": "NGN"}}

    response = create(api("vendor"), body)

    assert response.status_code == 201, response.content
    case = response.json()
    assert case["status"] == "approved"
    assert case["reason"] == STANDARD_CHANGE["defaults"]["reason"]  # the template's defaults
    assert case["payload"]["runbook"] == "RB-7"
    assert case["template"] == {"slug": "rds-minor", "name": "RDS minor version upgrade", "version": 1,
                                "pre_approved": True}
    approved = AuditEvent.objects.get(action="escalation.approved", target_id=case["id"])
    assert approved.details["pre_approved_by"]["version"] == 1
    # A later edit of the template never rewrites what was approved under version 1.
    api("ops").put("/templates/rds-minor", {"limits": {"max_amount_minor": 1}})
    assert api("vendor").get(f"/escalations/{case['id']}").json()["template"]["version"] == 1


def test_outside_its_limits_a_template_request_takes_the_normal_route_and_needs_two_approvals(api):
    api("ops").put("/templates/rds-minor", STANDARD_CHANGE)

    response = create(api("vendor"), {"template": "rds-minor", "source": CHANGE["source"], "risk_level": "high"})

    assert response.status_code == 201  # never an error
    case = response.json()
    assert case["status"] == "pending"
    assert case["approvals_required"] == 2
    assert case["template"]["pre_approved"] is False
    approve(api, case, "sm")
    assert approve(api, case, "sm2")["status"] == "approved"


def test_an_unknown_template_is_400_naming_it(api):
    problem = assert_problem(create(api("vendor"), {**CHANGE, "template": "nope"}), 400)
    assert "template" in problem["errors"]


# --- obligations ----------------------------------------------------------------------------------------

def _with_condition(api: Any) -> tuple[dict[str, Any], str]:
    case = create(api("vendor"), CHANGE).json()
    approved = approve(api, case, conditions=[{"text": "Attach the rollback plan", "owner": "ops"},
                                              "Tell the on-call team"])
    return approved, approved["conditions"][0]["id"]


def test_an_obligation_blocks_execution_until_met_or_waived(api):
    case, plan = _with_condition(api)
    rollback, on_call = case["conditions"]
    assert (rollback["owner"], rollback["status"], on_call["owner"]) == ("ops", "open", "api_key:vendor")
    assert rollback["due_at"] and rollback["evidence"] == []

    blocked = assert_problem(api("vendor").post(f"/escalations/{case['id']}/execution", {"result": {}}), 409)
    assert blocked["type"].endswith("conditions-unmet")
    assert {c["id"] for c in blocked["conditions"]} == {rollback["id"], on_call["id"]}

    evidence = api("ops").post(f"/escalations/{case['id']}/conditions/{plan}/evidence",
                               {"note": "Plan attached", "url": "https://wiki.example/rollback"})
    assert evidence.status_code == 201, evidence.content
    assert api("sm2").post(f"/escalations/{case['id']}/conditions/{plan}/met", {}).status_code == 200
    waived = api("sm").post(f"/escalations/{case['id']}/conditions/{on_call['id']}/waive",
                            {"justification": "On-call is the DBA doing it"})
    assert waived.status_code == 200
    statuses = {c["id"]: c["status"] for c in waived.json()["conditions"]}
    assert statuses == {plan: "met", on_call["id"]: "waived"}

    done = api("vendor").post(f"/escalations/{case['id']}/execution", {"result": {}})
    assert done.status_code == 200 and done.json()["status"] == "executed"
    assert {"condition.met", "condition.waived", "condition.evidence_added"} <= set(
        AuditEvent.objects.filter(target_id=case["id"]).values_list("action", flat=True))


def test_only_approvers_mark_met_or_waive_and_a_waiver_needs_a_justification(api):
    case, plan = _with_condition(api)
    base = f"/escalations/{case['id']}/conditions/{plan}"

    assert_problem(api("analyst").post(f"{base}/met", {}), 403)
    assert_problem(api("vendor").post(f"{base}/met", {}), 403)
    assert_problem(api("co").post(f"{base}/waive", {"justification": "no"}), 403)  # not a role of this route
    assert "justification" in assert_problem(api("sm").post(f"{base}/waive", {}), 400)["errors"]
    assert "justification" in assert_problem(api("sm").post(f"{base}/waive", {"justification": " "}), 400)["errors"]
    after = api("vendor").get(f"/escalations/{case['id']}").json()
    assert after["conditions"][0]["status"] == "open"  # nothing half-written


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://files.example/plan"}, "url"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({}, "note"),
])
def test_evidence_takes_only_http_links_and_something_to_say(api, body, field):
    case, plan = _with_condition(api)

    problem = assert_problem(api("ops").post(f"/escalations/{case['id']}/conditions/{plan}/evidence", body), 400)

    assert field in problem["errors"]


def test_another_tenant_never_sees_conditions_or_templates(api, other):
    case, plan = _with_condition(api)
    api("ops").put("/templates/rds-minor", STANDARD_CHANGE)
    outsider = Api(other["by_name"]["sm"]["api_token"])

    assert_problem(outsider.post(f"/escalations/{case['id']}/conditions/{plan}/met", {}), 404)
    assert_problem(outsider.get("/templates/rds-minor"), 404)
    # Only its own tenant's templates (the demo's, seeded for it too): never rds-minor.
    assert [t["slug"] for t in outsider.get("/templates").json()["results"]] == sorted(t["slug"] for t in DEMO_TEMPLATES)


def test_an_unknown_condition_is_404(api):
    case, _ = _with_condition(api)
    assert_problem(api("sm").post(f"/escalations/{case['id']}/conditions/nope/met", {}), 404)


# --- reports and exports ----------------------------------------------------------------------------------

def test_the_summary_and_the_export_carry_cost_variance_and_obligations(api):
    case = create(api("vendor"), CHANGE).json()
    approve(api, case)
    api("vendor").post(f"/escalations/{case['id']}/execution", {
        "result": {}, "actual_cost": {"value_minor": 11_000_000, "currency": "NGN"}})
    _with_condition(api)

    summary = api("ops").get("/reports/summary").json()

    ngn = next(t for t in summary["costs"]["totals"] if t["currency"] == "NGN")
    assert ngn["estimated_minor"] == 24_000_000 and ngn["actual_minor"] == 11_000_000
    assert ngn["variance_minor"] == -1_000_000
    assert summary["costs"]["variance_by_type"][0]["type"] == "OPERATION_CHANGE"
    assert summary["costs"]["variance_by_requester"][0]["requester"] == "api_key:vendor"
    assert summary["obligations"]["open"] == 2

    exported = b"".join(api("ops").get("/exports/escalations.json").streaming_content).decode()
    assert "cost_variance_minor" in exported and "-1000000" in exported.replace(" ", "")
    assert "Attach the rollback plan" in exported


def test_the_operators_home_lists_the_open_obligations_that_block_execution(api):
    from django.test import Client

    case, plan = _with_condition(api)
    operator = Client()
    operator.force_login(User.objects.get(username="ops"))

    panel = next(a for a in operator.get("/admin/").context["attention"] if a.key == "obligations")

    assert panel.count == 2 and not panel.ok
    assert any('"Attach the rollback plan"' in line and case["source"]["entity_id"] in line for line in panel.items)
    api("sm2").post(f"/escalations/{case['id']}/conditions/{plan}/met", {})
    again = next(a for a in operator.get("/admin/").context["attention"] if a.key == "obligations")
    assert again.count == 1


def test_the_demo_offers_a_pre_approved_standard_change_and_one_that_asks_two_people(api):
    source = {"system": "dba-tool", "entity_type": "change", "entity_id": "CHG-1"}

    index = create(api("vendor"), {"template": "db-index-online", "source": source}).json()
    migration = create(api("vendor"), {"template": "prod-schema-migration",
                                       "source": {**source, "entity_id": "CHG-2"}}).json()

    assert (index["status"], index["template"]["pre_approved"]) == ("approved", True)
    assert (migration["status"], migration["risk_level"], migration["approvals_required"]) == ("pending", "high", 2)
