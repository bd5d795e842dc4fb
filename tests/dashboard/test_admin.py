"""The operators' admin: every write goes through the services, secrets are shown once, lists filter and search."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts.models import ApiKey, Membership, PersonalToken, SealedTOTPDevice
from accounts.selectors import user_authority
from accounts.services import secret_digest
from audit.models import AuditEvent
from escalations.models import ChangeTemplate, Policy
from tests.dashboard.conftest import user

pytestmark = pytest.mark.django_db


def capabilities_of(*, user, tenant) -> frozenset[str]:
    """What the application asks (Actor.capabilities reads user_authority)."""
    return user_authority(user=user, tenant=tenant)[1]


@pytest.fixture
def operator(demo) -> Client:
    client = Client()
    client.force_login(user("ops"))
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("url", [
    "/admin/", "/admin/accounts/tenant/", "/admin/accounts/user/?q=ceo", "/admin/accounts/membership/?role=ceo",
    "/admin/accounts/apikey/?q=vendor", "/admin/accounts/personaltoken/", "/admin/accounts/tenantrolegroup/",
    "/admin/escalations/policy/?q=HIGH", "/admin/escalations/triggerrule/", "/admin/escalations/escalation/?status=pending",
    "/admin/accounts/apikey/add/", "/admin/accounts/membership/add/", "/admin/escalations/changetemplate/",
    "/admin/escalations/changetemplate/add/",
])
def test_the_demo_operator_can_open_every_admin_list(operator, url):
    assert operator.get(url).status_code == 200


def test_an_approver_cannot_open_the_admin(signed_in):
    assert signed_in("ceo").get("/admin/").status_code == 302


def test_creating_an_api_key_shows_its_secret_once_and_stores_only_the_digest(operator, demo):
    response = operator.post("/admin/accounts/apikey/add/", {"tenant": demo["tenant_obj"].pk, "name": "erp"},
                             follow=True)

    shown = [m for m in messages_of(response) if "shown only once" in m]
    match = re.search(r"(tgk_\S+)", shown[0])
    assert match
    secret = match.group(1)
    key = ApiKey.objects.get(name="erp")
    assert key.digest == secret_digest(secret)
    assert secret not in str(list(ApiKey.objects.filter(pk=key.pk).values()))
    assert AuditEvent.objects.filter(action="credential.created", target_id=str(key.pk)).exists()
    assert secret not in operator.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()


def test_the_revoke_action_revokes_through_the_service(operator, demo):
    key = ApiKey.objects.get(tenant=demo["tenant_obj"], name="vendor")

    operator.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [key.pk]})

    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEvent.objects.filter(action="credential.revoked", target_id=str(key.pk)).exists()


def test_a_personal_token_is_refused_for_someone_without_a_role_in_the_tenant(operator, make_tenant, demo):
    other = make_tenant("other")

    response = operator.post("/admin/accounts/personaltoken/add/",
                             {"user": user("ceo").pk, "tenant": other.pk, "name": "script"})

    assert response.status_code == 200 and "no active role" in response.content.decode()
    assert not PersonalToken.objects.filter(tenant=other).exists()


def test_resetting_an_authenticator_removes_the_persons_devices(operator):
    ceo = user("ceo")
    assert SealedTOTPDevice.objects.filter(user=ceo).exists()

    operator.post("/admin/accounts/user/", {"action": "reset_authenticator", "_selected_action": [ceo.pk]})

    assert not SealedTOTPDevice.objects.filter(user=ceo).exists()
    assert AuditEvent.objects.filter(action="totp.reset", target_id=str(ceo.pk)).exists()


def test_adding_a_membership_in_the_admin_grants_the_roles_capabilities(operator, make_tenant, demo):
    other = make_tenant("other")
    assert "escalation.decide" not in capabilities_of(user=user("co"), tenant=other)

    operator.post("/admin/accounts/membership/add/", {"tenant": other.pk, "user": user("co").pk,
                                                      "role": "compliance_officer"})

    assert Membership.objects.filter(tenant=other, user=user("co"), is_active=True).exists()
    assert "escalation.decide" in capabilities_of(user=user("co"), tenant=other)


def test_the_capability_matrix_grants_and_revokes_per_role(operator, demo):
    tenant = demo["tenant_obj"]
    url = f"/admin/accounts/tenant/{tenant.pk}/capabilities/"
    page = operator.get(url).content.decode()
    checked = re.findall(r'name="([a-z_]+\|[a-z_.]+)" id="[^"]+" checked', page)
    assert "compliance_officer|escalation.view_all" in checked

    kept = [c for c in checked if c != "compliance_officer|escalation.view_all"] + ["client_facing|escalation.view"]
    operator.post(url, {name: "on" for name in kept})

    assert "escalation.view_all" not in capabilities_of(user=user("co"), tenant=tenant)
    assert "escalation.view" in capabilities_of(user=user("analyst"), tenant=tenant)
    assert "escalation.decide" in capabilities_of(user=user("ceo"), tenant=tenant)  # untouched


def test_editing_a_policy_in_the_admin_bumps_its_version_and_validates_roles(operator, demo):
    from tests.dashboard.test_policy_editor import editor_data  # the editor's own form (no JSON since issue 22)

    policy = Policy.objects.get(tenant=demo["tenant_obj"], type="HIGH_VALUE")
    url = f"/admin/escalations/policy/{policy.pk}/change/"
    form = editor_data(policy, ack_sla_seconds_amount=2, ack_sla_seconds_unit="hours")

    refused = operator.post(url, {**form, "stage_0_roles": ["janitor"]})
    saved = operator.post(url, form)

    assert refused.status_code == 200 and "stage_0_roles" in refused.context["adminform"].form.errors
    assert saved.status_code == 302
    policy.refresh_from_db()
    assert (policy.version, policy.ack_sla_seconds) == (2, 7200)
    assert AuditEvent.objects.filter(action="policy.changed", target_id="HIGH_VALUE").exists()


def test_escalations_are_read_only_in_the_admin(operator, raise_escalation):
    escalation = raise_escalation()

    page = operator.get(f"/admin/escalations/escalation/{escalation.pk}/change/")

    assert page.status_code == 200
    assert "₦2,500,000.00" in page.content.decode() or "250000000" in page.content.decode()
    assert 'name="status"' not in page.content.decode()


def test_editing_a_trigger_rule_or_tenant_in_the_admin_is_audited(operator, demo):
    from escalations.models import TriggerRule

    rule = TriggerRule.objects.get(tenant=demo["tenant_obj"], kind="amount_at_least")
    tenant = demo["tenant_obj"]

    operator.post(f"/admin/escalations/triggerrule/{rule.pk}/change/", {
        "tenant": tenant.pk, "kind": "amount_at_least", "escalation_type": "HIGH_VALUE", "currency": "NGN",
        "threshold_minor": 50_000_000, "flag": "", "risk_level": "", "priority": 20, "is_active": "on"})
    operator.post(f"/admin/accounts/tenant/{tenant.pk}/change/", {
        "name": "Demo Bank", "audit_retention_days": 2557, "email_otp_allowed": "on", "locale": "en_NG",
        "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0})

    change = AuditEvent.objects.get(action="trigger_rule.changed", target_id=str(rule.pk))
    assert change.before and change.after
    assert (change.before["threshold_minor"], change.after["threshold_minor"]) == (100_000_000, 50_000_000)
    assert AuditEvent.objects.filter(action="tenant.changed", after__name="Demo Bank").exists()


def test_history_pages_offer_no_revert_that_would_bypass_the_services(operator, demo):
    policy = Policy.objects.get(tenant=demo["tenant_obj"], type="SMR")
    version = policy.history.first()

    page = operator.get(f"/admin/escalations/policy/{policy.pk}/history/{version.history_id}/")

    assert page.status_code == 200
    assert b"Revert" not in page.content


def test_a_tenant_s_locale_must_be_one_babel_knows(operator, demo):
    tenant = demo["tenant_obj"]

    page = operator.post(f"/admin/accounts/tenant/{tenant.pk}/change/", {
        "name": "Demo Ltd", "audit_retention_days": 2557, "locale": "klingon_XX",
        "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0})

    assert page.status_code == 200 and "is not a locale" in page.content.decode()
    tenant.refresh_from_db()
    assert tenant.locale == "en_NG"


def test_a_template_edited_in_the_admin_gets_a_new_version_and_an_audit_event(operator, demo):
    form = {"tenant": demo["tenant_obj"].pk, "slug": "restart-replica", "name": "Restart a read replica",
            "type": "OPERATION_CHANGE", "defaults": '{"reason": "Replica lag", "risk_level": "low"}',
            "pre_approved": "on", "max_amount_minor": "", "max_risk_level": "low", "is_active": "on"}

    refused = operator.post("/admin/escalations/changetemplate/add/", {**form, "type": "NO_SUCH_TYPE"})
    created = operator.post("/admin/escalations/changetemplate/add/", form)

    assert refused.status_code == 200 and "No active policy" in refused.content.decode()
    assert created.status_code == 302
    template = ChangeTemplate.objects.get(slug="restart-replica")
    changed = operator.post(f"/admin/escalations/changetemplate/{template.pk}/change/", {**form, "name": "Restart"})
    assert changed.status_code == 302
    template.refresh_from_db()
    assert (template.name, template.version, template.max_risk_level) == ("Restart", 2, "low")
    assert AuditEvent.objects.filter(action="template.changed", target_id="restart-replica").count() == 2
    assert template.history.count() == 2  # every version kept (simple-history)
