"""Conversation and amendments through the API (CONTRACT.md section 5), from the requester's and approvers' side."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from accounts.models import User
from accounts.stepup import challenge_create
from escalations.models import Comment, Escalation
from escalations.services import stepup_subject
from notifications.models import OutboxEvent
from tests.api.conftest import Api, assert_problem
from tests.conftest import totp_code

CHANGE = {"type": "OPERATION_CHANGE", "reason": "Drop the legacy index on payments",
          "source": {"system": "dba-tool", "entity_type": "change", "entity_id": "CHG-7"},
          "amount": {"value_minor": 5_000_000, "currency": "NGN"}, "risk_level": "high"}


def create(api: Api, body: dict) -> dict:
    response = api.post("/escalations", body, key=str(uuid.uuid4()))
    assert response.status_code == 201, response.content
    return response.json()


def decide(api: Api, case_id: str, username: str, **extra: str) -> Any:
    body = {"decision": "approve", "justification": "Looks right", "otp": totp_code(User.objects.get(username=username))}
    body.update(extra)
    return api.post(f"/escalations/{case_id}/decisions", body)


def amend(api: Api, case_id: str, body: dict) -> Any:
    return api.post(f"/escalations/{case_id}/amendments", body, key=str(uuid.uuid4()))


@pytest.mark.django_db
def test_an_amendment_after_one_of_two_approvals_dismisses_it_and_needs_two_fresh_ones(api):
    case = create(api("co"), CHANGE)
    assert case["approvals_required"] == 2
    assert decide(api("sm"), case["id"], "sm").status_code == 201

    response = amend(api("co"), case["id"], {"amount": {"value_minor": 9_000_000, "currency": "NGN"},
                                              "justification": "The final quote is higher."})

    assert response.status_code == 201, response.content
    amended = response.json()
    assert amended["amount"] == {"value_minor": 9_000_000, "currency": "NGN"}
    assert amended["status"] == "pending" and amended["current_stage"] == 0
    assert amended["approvals_received"] == 0 and amended["approvals_required"] == 2
    assert [d["dismissed"] for d in amended["decisions"]] == [True]
    # The same person may approve the new content again; two fresh approvals are needed.
    assert decide(api("sm"), case["id"], "sm").json()["status"] == "pending"
    final = decide(api("sm2"), case["id"], "sm2").json()
    assert final["status"] == "approved"
    assert [d["dismissed"] for d in final["decisions"]] == [True, False, False]
    assert OutboxEvent.objects.filter(type="escalation.amended", aggregate_id=case["id"]).count() == 1


@pytest.mark.django_db
def test_a_challenge_code_issued_before_an_amendment_is_refused_after_it(api, demo):
    case = create(api("co"), CHANGE)
    sm = User.objects.get(username="sm")
    escalation = Escalation.objects.get(pk=case["id"])
    _challenge, code = challenge_create(user=sm, tenant_id=demo["tenant_obj"].pk, subject=stepup_subject(escalation),
                                        channel="email")
    assert amend(api("co"), case["id"], {"reason": "Drop the legacy index (now with a backup first)",
                                         "justification": "Added a backup step."}).status_code == 201

    body = assert_problem(decide(api("sm"), case["id"], "sm", otp=code), 403)
    assert body["type"].endswith("otp-invalid")


@pytest.mark.django_db
def test_only_the_requester_amends_an_open_case_with_a_justification(api, other):
    case = create(api("co"), CHANGE)
    change = {"amount": {"value_minor": 1, "currency": "NGN"}, "justification": "Typo"}
    assert_problem(amend(api("co2"), case["id"], change), 403)
    assert_problem(amend(Api(other["by_name"]["co"]["api_token"]), case["id"], change), 404)
    assert_problem(amend(api("co"), case["id"], {**change, "justification": "  "}), 400)
    assert_problem(amend(api("co"), case["id"], {"justification": "nothing"}), 400)
    assert_problem(amend(api("co"), case["id"], {"type": "SMR", "justification": "x"}), 400)
    assert_problem(api("co").post(f"/escalations/{case['id']}/amendments", change), 400)  # no Idempotency-Key
    assert api("co").post(f"/escalations/{case['id']}/cancel", {}).status_code == 200
    assert_problem(amend(api("co"), case["id"], change), 409)
    assert Escalation.objects.get(pk=case["id"]).revision == 1  # nothing half-written


@pytest.mark.django_db
def test_an_approver_asks_the_requester_who_answers_and_the_flag_clears(api, demo):
    case = create(api("co"), CHANGE)
    asked = api("sm").post(f"/escalations/{case['id']}/comments",
                           {"body": "Which backup covers this, @co?", "question": True})
    assert asked.status_code == 201, asked.content
    assert asked.json()["kind"] == "question" and asked.json()["author"] == "sm"
    assert api("sm").get(f"/escalations/{case['id']}/comments").json()["awaiting_requester"] is True
    event = OutboxEvent.objects.get(type="escalation.commented", aggregate_id=case["id"])
    assert "body" not in event.data["comment"] and event.data["awaiting_requester"] is True

    answer = api("co").post(f"/escalations/{case['id']}/comments", {"body": "The nightly one, BK-12."})
    assert answer.status_code == 201 and answer.json()["by_requester"] is True
    thread = api("sm").get(f"/escalations/{case['id']}/comments").json()
    assert thread["awaiting_requester"] is False
    assert [c["body"] for c in thread["results"]] == ["Which backup covers this, @co?", "The nightly one, BK-12."]
    # Sealed at rest: the stored row does not hold the words.
    assert "BK-12" not in str(Comment.objects.get(pk=answer.json()["id"]).body)


@pytest.mark.django_db
def test_an_edit_is_a_new_version_and_bad_comments_are_refused(api, other):
    case = create(api("co"), CHANGE)
    first = api("sm").post(f"/escalations/{case['id']}/comments", {"body": "Frist"}).json()
    edit = api("sm").post(f"/escalations/{case['id']}/comments", {"body": "First", "replaces": first["id"]})
    assert edit.status_code == 201 and edit.json()["replaces"] == first["id"]
    thread = api("sm").get(f"/escalations/{case['id']}/comments").json()["results"]
    assert thread[0]["replaced_by"] == edit.json()["id"]
    assert_problem(api("sm2").post(f"/escalations/{case['id']}/comments", {"body": "x", "replaces": edit.json()["id"]}), 403)
    assert_problem(api("sm").post(f"/escalations/{case['id']}/comments", {"body": "x" * 5001}), 400)
    assert_problem(api("sm").post(f"/escalations/{case['id']}/comments", {"body": "  "}), 400)
    assert_problem(api("co").post(f"/escalations/{case['id']}/comments", {"body": "q?", "question": True}), 403)
    assert_problem(Api(other["by_name"]["co"]["api_token"]).post(f"/escalations/{case['id']}/comments", {"body": "hi"}), 404)
    assert_problem(Api(other["by_name"]["co"]["api_token"]).get(f"/escalations/{case['id']}/comments"), 404)


@pytest.mark.django_db
def test_a_vendor_key_comments_on_its_own_case_as_the_requester(api):
    case = create(api("vendor"), {**CHANGE, "requested_by": "dba@shop.example"})
    response = api("vendor").post(f"/escalations/{case['id']}/comments", {"body": "Window is 02:00-03:00."})
    assert response.status_code == 201 and response.json()["by_requester"] is True
    assert response.json()["author"] == "api_key:vendor"




@pytest.mark.django_db
def test_the_pdf_and_the_decisions_export_show_the_conversation_and_dismissed_approvals(api, demo):
    from escalations.models import Escalation as Case
    from reports.exports import ExportFilters, iter_rows
    from reports.pdf import escalation_report_pdf

    case = create(api("co"), CHANGE)
    decide(api("sm"), case["id"], "sm")
    api("sm").post(f"/escalations/{case['id']}/comments", {"body": "Rollback plan?", "question": True})
    amend(api("co"), case["id"], {"reason": "Reindex with a rollback plan", "justification": "Added rollback"})

    pdf = escalation_report_pdf(escalation=Case.objects.get(pk=case["id"]), generated_by="test")
    assert pdf.startswith(b"%PDF")
    rows = list(iter_rows(dataset="decisions", tenant=demo["tenant_obj"], filters=ExportFilters()))
    assert [row[-1] for row in rows] == [True]  # the approval, dismissed by the amendment


@pytest.mark.django_db
def test_the_requester_amends_the_estimated_cost_and_the_execution_window_and_the_diff_shows_both(api):
    from datetime import UTC, datetime, timedelta

    from escalations.models import Amendment

    case = create(api("co"), CHANGE)
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    window = {"starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=4)).isoformat()}

    response = amend(api("co"), case["id"], {"estimated_cost": {"value_minor": 120_000, "currency": "USD"},
                                              "execution_window": window, "justification": "Vendor quote and slot"})

    assert response.status_code == 201, response.content
    amended = response.json()
    assert amended["estimated_cost"] == {"value_minor": 120_000, "currency": "USD"}
    assert datetime.fromisoformat(amended["execution_window"]["starts_at"]) == starts
    revision = Escalation.objects.get(pk=case["id"]).revision
    changes = Amendment.objects.get(escalation_id=case["id"]).changes
    assert set(changes) == {"estimated_cost", "execution_window"} and changes["execution_window"]["before"] is None
    # The same checks as a new request: a window that ends before it starts is 400 naming it, and nothing changes.
    backwards = {"starts_at": window["ends_at"], "ends_at": window["starts_at"]}
    problem = assert_problem(amend(api("co"), case["id"], {"execution_window": backwards, "justification": "oops"}), 400)
    assert any(name.startswith("execution_window") for name in problem["errors"])
    assert Escalation.objects.get(pk=case["id"]).revision == revision


@pytest.mark.django_db
def test_an_amended_amount_that_crosses_a_routing_condition_adds_its_stage(api, demo):
    from accounts.actors import Actor
    from escalations.policies import policy_upsert

    policy_upsert(tenant=demo["tenant_obj"], type="OPERATION_CHANGE", actor=Actor.for_system(demo["tenant_obj"], "test"),
                  fields={"approvals_by_risk": {}, "route": [
                      {"roles": ["senior_manager"], "approvals_required": 1},
                      {"roles": ["ceo"], "approvals_required": 1,
                       "when": {"fact": "amount", "op": ">=", "value": 100_000_000, "currency": "NGN"}}]})
    case = create(api("co"), CHANGE)
    before = Escalation.objects.get(pk=case["id"])
    assert [stage["applies"] for stage in before.policy_snapshot["route_plan"]] == [True, False]
    assert before.approval.stages.count() == 1

    response = amend(api("co"), case["id"], {"amount": {"value_minor": 150_000_000, "currency": "NGN"},
                                              "justification": "The scope grew"})

    assert response.status_code == 201, response.content
    after = Escalation.objects.get(pk=case["id"])
    assert [stage["applies"] for stage in after.policy_snapshot["route_plan"]] == [True, True]
    assert [s.eligible_roles for s in after.approval.stages.order_by("index")] == [["senior_manager"], ["ceo"]]
