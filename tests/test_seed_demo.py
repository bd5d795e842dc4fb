"""`seed_demo` as CONTRACT.md section 1 describes it."""

from __future__ import annotations

import json
from io import StringIO

import pyotp
import pytest
from django.core.management import call_command

from accounts.models import Tenant, User
from accounts.services import credential_authenticate
from escalations.models import Policy, TriggerRule

pytestmark = pytest.mark.django_db
PEOPLE = {"co": "compliance_officer", "co2": "compliance_officer", "sm": "senior_manager", "sm2": "senior_manager",
          "gb": "governing_body", "ceo": "ceo", "analyst": "client_facing", "ops": "operator"}


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_json_output_is_exactly_one_object_of_the_contract_shape():
    data = json.loads(seed("--json"))

    assert set(data) == {"tenant", "api_keys", "users"}
    assert data["tenant"] == "demo"
    assert set(data["api_keys"]) == {"vendor"}
    assert {u["username"]: u["role"] for u in data["users"]} == PEOPLE
    for person in data["users"]:
        assert set(person) >= {"username", "email", "role", "password", "totp_secret", "api_token"}
        assert person["email"] == f"{person['username']}@demo.example"


def test_every_demo_credential_works():
    data = json.loads(seed("--json"))

    assert credential_authenticate(data["api_keys"]["vendor"]).api_key is not None
    for person in data["users"]:
        assert User.objects.get(username=person["username"]).check_password(person["password"])
        person_actor = credential_authenticate(person["api_token"])
        assert person_actor.user is not None and person_actor.user.username == person["username"]
        pyotp.TOTP(person["totp_secret"]).now()  # a valid base32 secret any authenticator app accepts


def test_seeding_twice_is_idempotent_and_prints_the_same_secrets():
    first = json.loads(seed("--json"))
    second = json.loads(seed("--json"))

    assert first == second
    assert Tenant.objects.filter(slug="demo").count() == 1
    assert User.objects.count() == len(PEOPLE)
    assert Policy.objects.count() == 7
    assert TriggerRule.objects.count() == 2


def test_seeding_again_restores_a_revoked_demo_key_and_records_it_on_the_audit_chain():
    from accounts.actors import Actor
    from accounts.models import ApiKey
    from accounts.services import credential_revoke
    from audit.models import AuditEvent

    data = json.loads(seed("--json"))
    key = ApiKey.objects.get(tenant__slug="demo", name="vendor")
    credential_revoke(credential=key, actor=Actor.for_system(key.tenant, "test"))

    seed("--json")

    assert credential_authenticate(data["api_keys"]["vendor"]).api_key == key
    restored = AuditEvent.objects.get(action="credential.restored", target_id=str(key.pk))
    assert restored.before is not None and restored.before["revoked_at"]
    assert restored.after == {"prefix": key.prefix, "revoked_at": None}


def test_another_tenant_gets_prefixed_usernames():
    data = json.loads(seed("--tenant", "acme", "--json"))

    assert data["tenant"] == "acme"
    assert {u["username"] for u in data["users"]} == {f"acme-{name}" for name in PEOPLE}
    assert data["users"][0]["email"] == "acme-co@acme.example"


def test_the_demo_policies_match_the_contract():
    seed("--json")
    policies = {p.type: p for p in Policy.objects.all()}

    assert set(policies) == {"HIGH_VALUE", "VENDOR_FLAGGED", "SANCTIONS_MATCH", "HIGH_RISK_CDD", "SMR",
                             "PROGRAM_APPROVAL", "OPERATION_CHANGE"}
    # "By risk" (null) with no approvals_by_risk: one approval, and setting approvals by risk takes effect (issue 22).
    assert policies["HIGH_VALUE"].route == [{"roles": ["ceo"], "approvals_required": None}]
    assert policies["HIGH_VALUE"].effective_approvals() == [{"low": 1, "medium": 1, "high": 1}]
    assert policies["HIGH_VALUE"].expiry_seconds == 24 * 3600
    assert [s["roles"] for s in policies["HIGH_RISK_CDD"].route] == [["compliance_officer"], ["senior_manager"]]
    assert policies["OPERATION_CHANGE"].approvals_by_risk == {"low": 0, "medium": 1, "high": 2}
    assert policies["OPERATION_CHANGE"].expiry_seconds == 72 * 3600
    assert policies["SMR"].ladder == ["compliance_officer", "senior_manager", "governing_body"]
    rule = TriggerRule.objects.get(kind="amount_at_least")
    assert (rule.currency, rule.threshold_minor, rule.escalation_type) == ("NGN", 100_000_000, "HIGH_VALUE")
