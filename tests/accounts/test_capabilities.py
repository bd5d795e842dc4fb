"""Capabilities are data: the default matrix, granted per tenant role, editable by operators."""

from __future__ import annotations

import pytest

from accounts.actors import Actor
from accounts.models import User
from accounts.roles import DEFAULT_MATRIX, Capability, Role
from accounts.services import capability_grant, capability_revoke, membership_deactivate
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", list(Role))
def test_each_role_has_exactly_the_default_capabilities(make_tenant, make_person, role):
    tenant = make_tenant()
    person = make_person(tenant, role, "person")

    actor = Actor(tenant=tenant, user=person)

    assert actor.capabilities == DEFAULT_MATRIX[role]
    for capability in Capability.values:
        assert actor.can(capability) is (capability in DEFAULT_MATRIX[role])


def test_a_client_facing_person_cannot_decide_or_view(make_tenant, make_person):
    tenant = make_tenant()
    analyst = Actor(tenant=tenant, user=make_person(tenant, Role.CLIENT_FACING, "analyst"))

    assert not analyst.can(Capability.ESCALATION_DECIDE)
    assert not analyst.can(Capability.ESCALATION_VIEW)


def test_a_role_in_one_tenant_grants_nothing_in_another(make_tenant, make_person):
    acme, globex = make_tenant("acme"), make_tenant("globex")
    ceo = make_person(acme, Role.CEO, "ceo")

    assert Actor(tenant=acme, user=ceo).can(Capability.ESCALATION_DECIDE)
    assert Actor(tenant=globex, user=ceo).capabilities == frozenset()


def test_a_person_may_hold_roles_in_several_tenants(make_tenant, make_person):
    from accounts.services import membership_add

    acme, globex = make_tenant("acme"), make_tenant("globex")
    person = make_person(acme, Role.OPERATOR, "pat")
    membership_add(tenant=globex, user=person, role=Role.CEO, actor=Actor.for_system(globex, "test"))

    assert Actor(tenant=acme, user=person).can(Capability.POLICY_MANAGE)
    assert not Actor(tenant=acme, user=person).can(Capability.ESCALATION_DECIDE)
    assert Actor(tenant=globex, user=person).can(Capability.ESCALATION_DECIDE)
    assert not Actor(tenant=globex, user=person).can(Capability.POLICY_MANAGE)


def test_operators_can_edit_the_matrix_and_the_change_is_audited(make_tenant, make_person):
    tenant = make_tenant()
    analyst = make_person(tenant, Role.CLIENT_FACING, "analyst")
    ops = Actor(tenant=tenant, user=make_person(tenant, Role.OPERATOR, "ops"))

    capability_grant(tenant=tenant, role=Role.CLIENT_FACING, capability=Capability.ESCALATION_VIEW, actor=ops)
    assert Actor(tenant=tenant, user=analyst).can(Capability.ESCALATION_VIEW)

    capability_revoke(tenant=tenant, role=Role.CLIENT_FACING, capability=Capability.ESCALATION_VIEW, actor=ops)
    assert not Actor(tenant=tenant, user=analyst).can(Capability.ESCALATION_VIEW)
    assert list(AuditEvent.objects.filter(action__startswith="capability.").values_list("action", flat=True)) == [
        "capability.granted", "capability.revoked"]


def test_a_deactivated_membership_loses_its_capabilities(make_tenant, make_person):
    tenant = make_tenant()
    ceo = make_person(tenant, Role.CEO, "ceo")

    membership_deactivate(membership=ceo.memberships.get(), actor=Actor.for_system(tenant, "test"))

    fresh = User.objects.get(pk=ceo.pk)
    assert Actor(tenant=tenant, user=fresh).capabilities == frozenset()
    assert Actor(tenant=tenant, user=fresh).roles == frozenset()


def test_api_keys_create_but_never_decide(vendor):
    assert vendor.can("escalation.create")
    assert not vendor.can(Capability.ESCALATION_DECIDE)
    assert not vendor.can(Capability.POLICY_MANAGE)


def test_roles_and_capabilities_read_together_match_each_read_alone(make_tenant, make_person):
    from guardian.shortcuts import assign_perm

    from accounts.roles import codename
    from accounts.selectors import user_authority, user_capabilities, user_roles

    acme, globex = make_tenant("acme"), make_tenant("globex")
    co = make_person(acme, Role.COMPLIANCE_OFFICER, "co")
    assign_perm(f"accounts.{codename(Capability.POLICY_MANAGE)}", co, acme)  # a direct, per-user grant
    departed = make_person(acme, Role.CEO, "departed")
    departed.is_active = False
    departed.save(update_fields=["is_active"])

    for user, tenant in ((co, acme), (co, globex), (departed, acme)):
        expected = (user_roles(user=user, tenant=tenant), user_capabilities(user=user, tenant=tenant))
        assert user_authority(user=user, tenant=tenant) == expected
    assert Capability.POLICY_MANAGE in Actor(tenant=acme, user=co).capabilities
    assert Actor(tenant=acme, user=departed).capabilities == frozenset()
    assert Actor(tenant=acme, user=departed).roles == frozenset({Role.CEO})
