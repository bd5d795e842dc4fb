"""A route stage may name people (issue 22): beside or instead of roles, through the API, with the engine's rules."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Membership, User
from escalations.models import Policy
from tests.api.conftest import ORDER, assert_problem
from tests.conftest import totp_code

pytestmark = pytest.mark.django_db


def named_route(*people: str, roles: tuple[str, ...] = (), approvals: int | None = 1) -> dict:
    return {"stages": [{"roles": list(roles), "people": list(people), "approvals_required": approvals}]}


def an_order(api) -> dict:
    created = api("vendor").post("/escalations", ORDER, key=str(uuid.uuid4()))
    assert created.status_code == 201, created.content
    return created.json()


def approve(api, who: str, case: dict, otp: str | None = None):
    return api(who).post(f"/escalations/{case['id']}/decisions", {
        "decision": "approve", "justification": "Checked it myself",
        "otp": otp if otp is not None else totp_code(User.objects.get(username=who))})


def test_a_stage_names_people_beside_a_role_and_get_shows_them(api):
    saved = api("ops").put("/policies/HIGH_VALUE", named_route("gb", roles=("ceo",), approvals=2))

    assert saved.status_code == 200, saved.content
    stage = api("ops").get("/policies/HIGH_VALUE").json()["stages"][0]
    assert (stage["roles"], stage["people"], stage["approvals_required"]) == (["ceo"], ["gb"], 2)


def test_the_document_with_named_people_goes_back_unchanged(api):
    api("ops").put("/policies/HIGH_VALUE", named_route("sm", "gb"))
    got = api("ops").get("/policies/HIGH_VALUE")

    put = api("ops").put("/policies/HIGH_VALUE", got.json(), headers={"If-Match": got["ETag"]})

    assert put.status_code == 200, put.content
    assert put.json()["stages"] == got.json()["stages"]
    assert put.json()["route"] == [[]]  # the roles-per-stage view: this stage names people only


def test_editing_the_roles_view_alone_keeps_the_people_a_stage_names(api):
    api("ops").put("/policies/HIGH_VALUE", named_route("gb", roles=("ceo",)))
    document = api("ops").get("/policies/HIGH_VALUE").json()
    document["route"] = [["senior_manager"]]

    saved = api("ops").put("/policies/HIGH_VALUE", document)

    assert saved.status_code == 200, saved.content
    assert saved.json()["stages"][0]["roles"] == ["senior_manager"]
    assert saved.json()["stages"][0]["people"] == ["gb"]


def test_a_named_person_outside_the_stages_roles_decides_with_step_up_and_the_case_completes(api):
    api("ops").put("/policies/HIGH_VALUE", named_route("analyst", roles=("ceo",)))
    case = an_order(api)
    assert case["assigned_role"] == "ceo"

    mine = api("analyst").get("/escalations", {"mine": "1"}).json()
    assert [e["id"] for e in mine["results"]] == [case["id"]]  # in the named person's queue
    assert_problem(approve(api, "analyst", case, otp="000000"), 403)  # the second factor is asked of them too
    decided = approve(api, "analyst", case)

    assert decided.status_code == 201, decided.content
    body = decided.json()
    assert body["status"] == "approved"
    assert (body["decisions"][0]["decided_by"], body["decisions"][0]["role"]) == ("analyst", "")


def test_the_case_route_names_its_stages_people_when_created_read_and_listed(api):
    api("ops").put("/policies/HIGH_VALUE", {"stages": [
        {"roles": ["ceo"], "people": ["sm", "gb"], "approvals_required": 1},
        {"roles": ["compliance_officer"], "approvals_required": 1}]})

    created = an_order(api)
    read = api("ceo").get(f"/escalations/{created['id']}").json()
    listed = api("ceo").get("/escalations").json()["results"]

    for case in (created, read, next(e for e in listed if e["id"] == created["id"])):
        assert [stage["people"] for stage in case["route"]] == [["gb", "sm"], []]


def test_someone_in_no_role_of_the_stage_and_not_named_is_refused(api):
    api("ops").put("/policies/HIGH_VALUE", named_route("gb", roles=("ceo",)))
    case = an_order(api)

    body = assert_problem(approve(api, "sm", case), 403)

    assert "not-assigned" in body["type"]


def test_named_people_each_give_one_vote_toward_a_quorum(api):
    api("ops").put("/policies/HIGH_VALUE", named_route("sm", "gb", approvals=2))
    case = an_order(api)
    assert case["assigned_role"] == ""  # nobody is asked by role: the stage names people only

    first = approve(api, "sm", case)
    again = approve(api, "sm", case)
    second = approve(api, "gb", case)

    assert first.json()["status"] == "pending"
    assert_problem(again, 409)
    assert second.json()["status"] == "approved"


def test_a_named_person_away_has_their_delegate_decide_on_their_behalf(api):
    api("ops").put("/policies/HIGH_VALUE", named_route("gb"))
    start = timezone.now()
    assert api("gb").post("/delegations", {"delegate": "co2", "starts_at": start.isoformat(),
                                           "ends_at": (start + timedelta(days=2)).isoformat()}).status_code == 201
    case = an_order(api)

    assert case["id"] in [e["id"] for e in api("co2").get("/escalations", {"mine": "1"}).json()["results"]]
    decided = approve(api, "co2", case)

    assert decided.status_code == 201, decided.content
    decision = decided.json()["decisions"][0]
    assert (decision["decided_by"], decision["on_behalf_of"], decided.json()["status"]) == ("co2", "gb", "approved")


@pytest.mark.parametrize("people, approvals, field, words", [
    (["nobody-here"], 1, "route[0].people", "Unknown person 'nobody-here'"),
    (["other-ceo"], 1, "route[0].people", "Unknown person 'other-ceo'"),  # another tenant's: not revealed
    ([""], 1, "route[0].people", "A list of usernames"),
    (["ceo", "ceo"], 2, "route[0].approvals_required", "only 1"),  # one person named twice is one person
])
def test_a_bad_named_person_is_400_naming_the_field_and_saves_nothing(api, other, people, approvals, field, words):
    before = Policy.objects.get(tenant__slug="demo", type="HIGH_VALUE").version

    body = assert_problem(api("ops").put("/policies/HIGH_VALUE", named_route(*people, approvals=approvals)), 400)

    assert field in body["errors"], body
    assert words in " ".join(body["errors"][field])
    assert Policy.objects.get(tenant__slug="demo", type="HIGH_VALUE").version == before


def test_another_tenants_person_reads_exactly_like_someone_who_does_not_exist(api, other):
    theirs = assert_problem(api("ops").put("/policies/HIGH_VALUE", named_route("other-ceo")), 400)
    nobody = assert_problem(api("ops").put("/policies/HIGH_VALUE", named_route("other-nobody")), 400)

    assert theirs["errors"]["route[0].people"][0].replace("other-ceo", "X") == \
        nobody["errors"]["route[0].people"][0].replace("other-nobody", "X")


def test_an_inactive_member_cannot_be_named(api):
    Membership.objects.filter(user__username="gb", tenant__slug="demo").update(is_active=False)

    body = assert_problem(api("ops").put("/policies/HIGH_VALUE", named_route("gb")), 400)

    assert "inactive" in body["errors"]["route[0].people"][0]


def test_a_named_person_counts_once_beside_the_role_they_hold_too(api):
    # ceo holds the stage's role and is named: still one person, so two approvals cannot be met by the two "seats".
    body = assert_problem(api("ops").put("/policies/HIGH_VALUE", named_route("ceo", roles=("ceo",), approvals=2)), 400)

    assert "only 1 active distinct person" in body["errors"]["route[0].approvals_required"][0]
    assert api("ops").put("/policies/HIGH_VALUE", named_route("gb", roles=("ceo",), approvals=2)).status_code == 200


def test_the_dry_run_shows_the_people_a_stage_names(api):
    api("ops").put("/policies/HIGH_VALUE", named_route("gb", roles=("ceo",)))

    checked = api("vendor").post("/escalations/check", {"amount": ORDER["amount"]})

    assert checked.status_code == 200, checked.content
    assert checked.json()["route"][0]["people"] == ["gb"]
