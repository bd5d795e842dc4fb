"""The route builder names people (issue 22): a multi-select of the tenant's members per stage, saved, checked by
the policy's rules next to the field, and shown in the preview among who is asked first."""

from __future__ import annotations

import pytest

from accounts.models import Membership
from tests.api.conftest import other  # noqa: F401 (fixture: a second tenant)
from tests.dashboard.test_policy_editor import editor_data, operator, policy, url_of  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_an_operator_names_a_person_beside_the_role_and_saves(operator, demo):  # noqa: F811
    high_value = policy(demo, "HIGH_VALUE")

    response = operator.post(url_of(high_value), editor_data(high_value, stage_0_people=["gb"]))

    assert response.status_code == 302, response.content.decode()[:3000]
    high_value.refresh_from_db()
    assert high_value.route == [{"roles": ["ceo"], "approvals_required": None, "people": ["gb"]}]
    page = operator.get(url_of(high_value)).content.decode()
    assert '<option value="gb" selected>Funke Adeyemi (gb)</option>' in page


def test_a_stage_of_named_people_only_is_a_stage(operator, demo):  # noqa: F811
    high_value = policy(demo, "HIGH_VALUE")

    operator.post(url_of(high_value), editor_data(high_value, stage_0_roles=[], stage_0_people=["sm", "gb"],
                                                  stage_0_mode="fixed", stage_0_approvals=2))

    high_value.refresh_from_db()
    assert high_value.route == [{"roles": [], "approvals_required": 2, "people": ["sm", "gb"]}]


def test_the_preview_shows_a_named_person_among_who_is_asked_first(operator, demo):  # noqa: F811
    high_value = policy(demo, "HIGH_VALUE")
    data = editor_data(high_value, stage_0_people=["gb"], policy_id=high_value.pk, preview_amount="2500000",
                       preview_currency="NGN")

    page = operator.post("/admin/escalations/policy/preview/", data).content.decode()

    assert "Ngozi Eze (CEO)" in page and "Funke Adeyemi (named)" in page
    assert "CEO, Funke Adeyemi (gb)" in page  # the stage's deciders: its role, then the people it names


def test_more_approvals_than_distinct_people_is_shown_next_to_the_number(operator, demo):  # noqa: F811
    high_value = policy(demo, "HIGH_VALUE")

    page = operator.post(url_of(high_value), editor_data(high_value, stage_0_people=["ceo"], stage_0_mode="fixed",
                                                         stage_0_approvals=2))

    errors = page.context["adminform"].form.errors
    assert "only 1 active distinct person" in str(errors["stage_0_approvals"])
    high_value.refresh_from_db()
    assert high_value.version == 1


def test_a_named_person_who_has_left_shows_as_such_and_the_policy_cannot_be_saved_with_them(operator, demo):  # noqa: F811
    high_value = policy(demo, "HIGH_VALUE")
    operator.post(url_of(high_value), editor_data(high_value, stage_0_people=["gb"]))
    Membership.objects.filter(user__username="gb", tenant=demo["tenant_obj"]).update(is_active=False)
    high_value.refresh_from_db()

    shown = operator.get(url_of(high_value)).content.decode()
    page = operator.post(url_of(high_value), editor_data(high_value))

    assert "gb (not an active member)" in shown
    assert "inactive" in str(page.context["adminform"].form.errors["stage_0_people"])
    high_value.refresh_from_db()
    assert high_value.version == 2


def test_another_tenants_person_is_not_offered_nor_accepted(operator, demo, other):  # noqa: F811
    high_value = policy(demo, "HIGH_VALUE")

    page = operator.post(url_of(high_value), editor_data(high_value, stage_0_people=["other-gb"]))

    assert "other-gb" not in operator.get(url_of(high_value)).content.decode()
    assert "stage_0_people" in page.context["adminform"].form.errors
    high_value.refresh_from_db()
    assert high_value.version == 1


def test_a_named_person_outside_any_approving_role_finds_the_case_in_their_queue_and_may_decide(
        demo, raise_escalation, signed_in):
    from accounts.actors import Actor
    from escalations.policies import policy_upsert

    tenant = demo["tenant_obj"]
    policy_upsert(tenant=tenant, type="HIGH_VALUE", actor=Actor.for_system(tenant, "test"),
                  fields={"route": [{"roles": [], "people": ["analyst"], "approvals_required": 1}]})
    escalation = raise_escalation()
    client = signed_in("analyst")  # client-facing staff: no capability of their own on escalations

    queue = client.get("/").content.decode()
    case = client.get(f"/e/{escalation.pk}/")

    assert str(escalation.pk) in queue
    assert case.status_code == 200
    assert case.context["can_decide"] and case.context["assigned_to_me"]
