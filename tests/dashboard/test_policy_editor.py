"""The operators' policy editor: no JSON, durations in people's units, a route builder, a preview, versions."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import Membership, User
from audit.models import AuditEvent
from escalations.models import APPROVALS_PRECEDENCE, Policy
from escalations.policy_editor import PolicyEditorForm
from tests.dashboard.conftest import user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(demo) -> Client:
    client = Client()
    client.force_login(user("ops"))
    return client


def editor_data(policy: Policy, **changes: Any) -> dict[str, Any]:
    """What the editor page posts when the operator changes nothing but `changes`."""
    form = PolicyEditorForm(instance=policy)
    data: dict[str, Any] = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = "on" if value is True else value
    data.update(changes)
    if policy.pk:  # read-only on the change page: the browser does not post them
        data.pop("tenant", None), data.pop("type", None)
    return {k: v for k, v in data.items() if v is not None}


def url_of(policy: Policy) -> str:
    return f"/admin/escalations/policy/{policy.pk}/change/"


def policy(demo, type: str) -> Policy:
    return Policy.objects.get(tenant=demo["tenant_obj"], type=type)


def test_the_editor_shows_durations_in_hours_and_days_not_seconds(operator, demo):
    page = operator.get(url_of(policy(demo, "OPERATION_CHANGE"))).content.decode()

    assert 'name="expiry_seconds_amount" value="3"' in page and '<option value="days" selected>' in page
    assert 'name="route"' not in page and 'name="ladder"' not in page  # no JSON textareas
    assert APPROVALS_PRECEDENCE.split(".")[0] in page


def test_saving_the_editor_unchanged_bumps_the_version_and_is_audited(operator, demo):
    high_value = policy(demo, "HIGH_VALUE")

    response = operator.post(url_of(high_value), editor_data(high_value, ack_sla_seconds_amount=2,
                                                             ack_sla_seconds_unit="hours"))

    assert response.status_code == 302, response.content.decode()[:3000]
    high_value.refresh_from_db()
    assert (high_value.version, high_value.ack_sla_seconds) == (2, 7200)
    assert high_value.route == [{"roles": ["ceo"], "approvals_required": None}]
    assert AuditEvent.objects.filter(action="policy.changed", target_id="HIGH_VALUE").exists()


def test_approvals_by_risk_set_in_the_editor_take_effect_on_a_by_risk_stage(operator, demo):
    high_value = policy(demo, "HIGH_VALUE")

    operator.post(url_of(high_value), editor_data(high_value, approvals_low=0, approvals_medium=1, approvals_high=1))

    high_value.refresh_from_db()
    assert high_value.effective_approvals() == [{"low": 0, "medium": 1, "high": 1}]


def test_approvals_by_risk_that_a_fixed_stage_would_override_are_refused_next_to_the_numbers(operator, demo):
    high_value = policy(demo, "HIGH_VALUE")

    page = operator.post(url_of(high_value), editor_data(high_value, stage_0_mode="fixed", stage_0_approvals=1,
                                                         approvals_high=2))

    assert page.status_code == 200
    assert "would change nothing" in page.content.decode() or "change nothing" in page.content.decode()
    high_value.refresh_from_db()
    assert high_value.version == 1


@pytest.mark.parametrize("changes, field, message", [
    ({"stage_0_roles": []}, None, "non-empty list"),
    ({"stage_0_mode": "fixed", "stage_0_approvals": 3}, "stage_0_approvals", "only 1 active person"),
    ({"stage_1_roles": ["governing_body"], "stage_1_when_fact": "amount", "stage_1_when_op": ">=",
      "stage_1_when_value": "lots", "stage_1_when_currency": "NGN"}, "stage_1_when_value", "money"),
    ({"stage_1_roles": ["governing_body"], "stage_1_when_fact": "payload.", "stage_1_when_key": "size",
      "stage_1_when_op": ">=", "stage_1_when_value": "big"}, "stage_1_when_value", "compares numbers"),
    ({"stage_0_when_fact": "risk_level", "stage_0_when_op": "=", "stage_0_when_value": "high"}, None,
     "apply always"),
    ({"ack_sla_seconds_amount": 0}, "ack_sla_seconds_amount", ""),
])
def test_a_bad_route_is_shown_next_to_the_field_and_nothing_is_saved(operator, demo, changes, field, message):
    high_value = policy(demo, "HIGH_VALUE")

    page = operator.post(url_of(high_value), editor_data(high_value, **changes))

    assert page.status_code == 200
    errors = page.context["adminform"].form.errors
    assert (field in errors) if field else errors.get("__all__"), errors
    assert message in str(errors)
    high_value.refresh_from_db()
    assert high_value.version == 1


def test_an_extra_stage_for_large_amounts_is_saved_as_a_condition_in_minor_units(operator, demo):
    high_value = policy(demo, "HIGH_VALUE")

    operator.post(url_of(high_value), editor_data(
        high_value, stage_1_roles=["governing_body"], stage_1_mode="fixed", stage_1_approvals=1,
        stage_1_when_fact="amount", stage_1_when_op=">=", stage_1_when_value="5,000,000", stage_1_when_currency="NGN"))

    high_value.refresh_from_db()
    assert high_value.route[1] == {"roles": ["governing_body"], "approvals_required": 1,
                                   "when": {"fact": "amount", "op": ">=", "value": 500_000_000, "currency": "NGN"}}
    shown = operator.get(url_of(high_value)).content.decode()
    assert 'name="stage_1_when_value" value="5000000' in shown


def test_the_preview_shows_route_approvals_deadlines_and_who_is_notified(operator, demo):
    high_value = policy(demo, "HIGH_VALUE")
    data = editor_data(high_value, stage_1_roles=["governing_body"], stage_1_mode="fixed", stage_1_approvals=1,
                       stage_1_when_fact="risk_level", stage_1_when_op="=", stage_1_when_value="high",
                       policy_id=high_value.pk, preview_amount="2500000", preview_currency="NGN", preview_risk="high",
                       preview_attributes="channel=export")

    page = operator.post("/admin/escalations/policy/preview/", data).content.decode()

    assert "trigger rules pick HIGH_VALUE" in page
    assert "2 approvals" in page
    assert "risk level = high" in page
    assert "Ngozi Eze (CEO)" in page  # the demo CEO is told first
    assert "Acknowledge by" in page


def test_the_preview_of_an_invalid_form_lists_what_to_fix(operator, demo):
    high_value = policy(demo, "HIGH_VALUE")

    page = operator.post("/admin/escalations/policy/preview/", editor_data(
        high_value, policy_id=high_value.pk, stage_0_roles=[])).content.decode()

    assert "Fix these first" in page


def test_the_versions_page_shows_what_changed_between_versions(operator, demo):
    smr = policy(demo, "SMR")
    operator.post(url_of(smr), editor_data(smr, expiry_seconds_amount=2, expiry_seconds_unit="days"))

    page = operator.get(f"/admin/escalations/policy/{smr.pk}/versions/").content.decode()

    assert "Version 2" in page and "expiry_seconds" in page and "172800" in page


def test_saving_a_page_opened_before_someone_else_saved_is_refused_and_keeps_their_change(operator, demo):
    smr = policy(demo, "SMR")
    my_page = editor_data(smr, name="Mine")
    operator.post(url_of(smr), editor_data(smr, name="Theirs"))

    response = operator.post(url_of(smr), my_page, follow=True)

    assert "Not saved" in response.content.decode()
    smr.refresh_from_db()
    assert (smr.name, smr.version) == ("Theirs", 2)


# --- the admin as a product ------------------------------------------------------------------------


def test_the_operators_home_lists_what_needs_attention(operator, demo, raise_escalation):
    page = operator.get("/admin/")

    body = page.content.decode()
    assert "TrustGuard" in body and "Django administration" not in body
    keys = [a.key for a in page.context["attention"]]
    assert keys == ["dead-letters", "stuck", "unstaffed", "obligations", "providers"]


def test_third_party_apps_are_hidden_from_an_operator_who_is_not_a_superuser(demo):
    ops = user("ops")
    ops.is_superuser = False
    ops.save()
    from django.contrib.auth.models import Permission
    ops.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["escalations", "axes"]))
    client = Client()
    client.force_login(ops)

    apps = [a["app_label"] for a in client.get("/admin/").context["app_list"]]

    assert "escalations" in apps and "axes" not in apps


def test_a_superuser_sees_the_third_party_apps_grouped_last_as_system(operator):
    names = [a["name"] for a in operator.get("/admin/").context["app_list"]]

    system = [n for n in names if n.startswith("System · ")]
    assert system and names[-len(system):] == system


def test_a_person_is_added_with_a_role_on_one_page(operator, demo):
    tenant = demo["tenant_obj"]
    response = operator.post("/admin/accounts/user/add/", {
        "username": "newcfo", "usable_password": "true",
        "password1": "a long pass phrase 42", "password2": "a long pass phrase 42",
        "first_name": "Kemi", "last_name": "Ade", "email": "kemi@demo.example", "phone_number": "",
        "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0,
        "memberships-2-TOTAL_FORMS": 1, "memberships-2-INITIAL_FORMS": 0,
        "memberships-2-0-tenant": tenant.pk, "memberships-2-0-role": "senior_manager"})

    assert response.status_code == 302, response.content.decode()[:2000]
    person = User.objects.get(username="newcfo")
    assert Membership.objects.filter(user=person, tenant=tenant, role="senior_manager", is_active=True).exists()
    assert AuditEvent.objects.filter(action="membership.added", target_id=str(person.pk)).exists()


def test_the_case_page_says_which_conditional_stage_is_on_the_route_and_why(demo, signed_in, raise_escalation):
    from accounts.actors import Actor
    from escalations.policies import policy_upsert

    policy_upsert(tenant=demo["tenant_obj"], type="HIGH_VALUE", actor=Actor.for_system(demo["tenant_obj"], "test"),
                  fields={"route": [{"roles": ["ceo"]}, {"roles": ["governing_body"], "approvals_required": 1,
                                     "when": {"fact": "amount", "op": ">=", "value": 200_000_000, "currency": "NGN"}}]})
    escalation = raise_escalation(naira=2_500_000)

    page = signed_in("ceo").get(f"/e/{escalation.pk}/").content.decode()

    assert "The Governing body stage is on the route because amount ≥ ₦2,000,000.00" in page
