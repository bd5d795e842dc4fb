"""Custom roles: an operator adds finance_director to a tenant; policies route to it; its people decide."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from accounts.actors import Actor
from accounts.models import CustomRole, Membership, SealedTOTPDevice, Tenant, User
from accounts.selectors import tenant_roles, user_authority
from accounts.services import custom_role_create, membership_add, personal_token_create
from audit.models import AuditEvent
from escalations.terminology import label
from tests.api.conftest import ORDER, Api, assert_problem
from tests.conftest import totp_code
from trustguard.errors import ValidationFailed

pytestmark = pytest.mark.django_db

APPROVER = ["escalation.view", "escalation.view_all", "escalation.decide", "escalation.acknowledge"]


def operator_client() -> Client:
    client = Client()
    client.force_login(User.objects.get(username="ops"))
    return client


def finance_director(tenant) -> tuple[User, str]:
    """A person holding the custom role, with an authenticator and an API token."""
    person = User.objects.create_user(username="fd", email="fd@demo.example", password="correct horse battery",
                                      first_name="Folake", last_name="Dada")
    membership_add(tenant=tenant, user=person, role="finance_director", actor=Actor.for_system(tenant, "test"))
    SealedTOTPDevice.objects.create(user=person, name="phone", confirmed=True)
    _, secret = personal_token_create(user=person, tenant=tenant, name="cli", actor=Actor.for_system(tenant, "test"))
    return person, secret


def test_an_operator_adds_a_custom_role_with_capabilities_in_the_admin(demo):
    tenant = demo["tenant_obj"]

    response = operator_client().post("/admin/accounts/customrole/add/", {
        "tenant": tenant.pk, "key": "finance_director", "label": "Finance director", "capabilities": APPROVER})

    assert response.status_code == 302, response.content[:2000]
    assert tenant_roles(tenant=tenant)["finance_director"] == "Finance director"
    assert list(tenant_roles(tenant=tenant))[:6] == ["client_facing", "compliance_officer", "senior_manager",
                                                     "governing_body", "ceo", "operator"]  # the built-ins stay
    assert AuditEvent.objects.filter(action="role.created", target_id="finance_director").exists()
    person, _ = finance_director(tenant)
    roles, capabilities = user_authority(user=person, tenant=tenant)
    assert roles == {"finance_director"}
    assert set(APPROVER) <= capabilities
    page = operator_client().get(f"/admin/accounts/tenant/{tenant.pk}/capabilities/").content.decode()
    assert 'name="finance_director|escalation.decide" id=' in page  # edited on the matrix like a built-in


def test_a_custom_role_is_routed_to_and_its_member_approves_with_step_up(demo, api):
    tenant = demo["tenant_obj"]
    custom_role_create(tenant=tenant, key="finance_director", label="Finance director", capabilities=APPROVER,
                       actor=Actor.for_system(tenant, "test"))
    person, secret = finance_director(tenant)
    changed = api("ops").put("/policies/HIGH_VALUE", {"route": [{"roles": ["finance_director"], "approvals_required": 1}],
                                                      "ladder": ["finance_director", "governing_body"]})
    assert changed.status_code == 200, changed.content

    created = api("vendor").post("/escalations", ORDER, key=str(uuid.uuid4()))
    assert created.status_code == 201, created.content
    escalation = created.json()
    assert escalation["assigned_role"] == "finance_director"
    mine = Api(secret).get("/escalations", {"mine": "1"}).json()
    assert [e["id"] for e in mine["results"]] == [escalation["id"]]
    refused = Api(secret).post(f"/escalations/{escalation['id']}/decisions",
                               {"decision": "approve", "justification": "Within budget", "otp": "000000"})
    assert refused.status_code == 403  # the second factor is asked of a custom role too

    decided = Api(secret).post(f"/escalations/{escalation['id']}/decisions",
                               {"decision": "approve", "justification": "Within budget", "otp": totp_code(person)})

    assert decided.status_code == 201, decided.content
    body = decided.json()
    assert body["status"] == "approved"
    assert body["decisions"][0]["role"] == "finance_director"
    assert body["decisions"][0]["decided_by"] == "fd"


def test_a_route_or_ladder_naming_a_role_the_tenant_lacks_is_400_naming_the_field(demo, api, other):
    elsewhere = Tenant.objects.get(slug="other")
    custom_role_create(tenant=elsewhere, key="finance_director", label="Finance director", capabilities=APPROVER,
                       actor=Actor.for_system(elsewhere, "test"))

    route = api("ops").put("/policies/HIGH_VALUE", {"route": [["ceo"], ["finance_director"]]})
    ladder = api("ops").put("/policies/HIGH_VALUE", {"ladder": ["ceo", "finance_director"]})

    assert "route[1].roles" in assert_problem(route, 400)["errors"]  # another tenant's role is not a role here
    assert "ladder.1" in assert_problem(ladder, 400)["errors"]


@pytest.mark.parametrize("key, problem", [
    ("ceo", "built-in"), ("Finance Director", "lower-case"), ("x", "lower-case"), ("finance_director", "already"),
])
def test_a_custom_role_key_must_be_new_well_formed_and_not_built_in(demo, key, problem):
    tenant = demo["tenant_obj"]
    actor = Actor.for_system(tenant, "test")
    custom_role_create(tenant=tenant, key="finance_director", label="Finance director", actor=actor)

    with pytest.raises(ValidationFailed) as refused:
        custom_role_create(tenant=tenant, key=key, label="Someone", actor=actor)

    assert problem in (refused.value.errors or {})["key"][0]
    assert CustomRole.objects.filter(tenant=tenant).count() == 1


def test_a_membership_in_a_role_the_tenant_lacks_is_refused(demo):
    tenant = demo["tenant_obj"]
    person = User.objects.create_user(username="x", email="x@demo.example")

    with pytest.raises(ValidationFailed):
        membership_add(tenant=tenant, user=person, role="finance_director", actor=Actor.for_system(tenant, "test"))
    refused = operator_client().post("/admin/accounts/membership/add/", {"tenant": tenant.pk, "user": person.pk,
                                                                          "role": "finance_director"})

    assert refused.status_code == 200 and b"Not a role of demo" in refused.content
    assert not Membership.objects.filter(user=person).exists()


def test_a_custom_role_reads_as_its_label_and_a_term_overrides_it(demo):
    tenant = demo["tenant_obj"]
    custom_role_create(tenant=tenant, key="finance_director", label="Finance director",
                       actor=Actor.for_system(tenant, "test"))

    assert label("role", "finance_director", tenant=tenant, language="en") == "Finance director"
    assert label("role", "ceo", tenant=tenant, language="fr") == "Directeur général"
