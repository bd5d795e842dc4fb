"""The demo tenant of CONTRACT.md section 3: people, credentials, policies and trigger rules.

Demo secrets are derived from SECRET_KEY, tenant and name, so seeding again is idempotent and
prints the same credentials. Only for demonstrations: real tenants get random secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.actors import Actor
from accounts.models import ApiKey, Membership, PersonalToken, SealedTOTPDevice, Tenant, User
from accounts.roles import Role
from accounts.services import (
    API_KEY_PREFIX,
    TOKEN_PREFIX,
    api_key_create,
    credential_restore,
    membership_add,
    personal_token_create,
    secret_digest,
    tenant_create,
)

from .models import ChangeTemplate, ExpiryOutcome, Policy, TriggerRule
from .standard_changes import template_upsert

DEMO_PEOPLE = [
    ("co", Role.COMPLIANCE_OFFICER, "Chioma Okafor", "+2348030000001"),
    ("co2", Role.COMPLIANCE_OFFICER, "Tunde Bakare", "+2348030000002"),
    ("sm", Role.SENIOR_MANAGER, "Amina Yusuf", "+2348030000003"),
    ("sm2", Role.SENIOR_MANAGER, "Emeka Obi", "+2348030000004"),
    ("gb", Role.GOVERNING_BODY, "Funke Adeyemi", "+2348030000005"),
    ("ceo", Role.CEO, "Ngozi Eze", "+2348030000006"),
    ("analyst", Role.CLIENT_FACING, "Sade Lawal", "+2348030000007"),
    ("ops", Role.OPERATOR, "Musa Ibrahim", "+2348030000008"),
]
LADDER = [Role.COMPLIANCE_OFFICER, Role.SENIOR_MANAGER, Role.GOVERNING_BODY]
HOUR = 3600
DEMO_POLICIES: list[dict[str, Any]] = [
    {"type": "HIGH_VALUE", "name": "High-value order", "route": [{"roles": [Role.CEO], "approvals_required": None}],
     "expiry_seconds": 24 * HOUR},
    {"type": "VENDOR_FLAGGED", "name": "Order from a flagged vendor",
     "route": [{"roles": [Role.CEO], "approvals_required": None}]},
    {"type": "SANCTIONS_MATCH", "name": "Sanctions screening match",
     "route": [{"roles": [Role.COMPLIANCE_OFFICER], "approvals_required": None}], "ack_sla_seconds": HOUR,
     "default_risk_level": "high", "high_risk_expiry_outcome": ExpiryOutcome.REJECT},
    {"type": "HIGH_RISK_CDD", "name": "High-risk customer due diligence",
     "route": [{"roles": [Role.COMPLIANCE_OFFICER], "approvals_required": None},
               {"roles": [Role.SENIOR_MANAGER], "approvals_required": None}], "default_risk_level": "high"},
    {"type": "SMR", "name": "Suspicious matter report",
     "route": [{"roles": [Role.COMPLIANCE_OFFICER], "approvals_required": None}]},
    {"type": "PROGRAM_APPROVAL", "name": "AML/CFT programme approval",
     "route": [{"roles": [Role.GOVERNING_BODY], "approvals_required": None}], "expiry_seconds": 7 * 24 * HOUR},
    {"type": "OPERATION_CHANGE", "name": "Production change",
     "route": [{"roles": [Role.SENIOR_MANAGER], "approvals_required": None}],
     "approvals_by_risk": {"low": 0, "medium": 1, "high": 2}, "expiry_seconds": 72 * HOUR},
]
HIGH_VALUE_THRESHOLD_KOBO = 100_000_000  # ₦1,000,000
# Standard changes (escalations.standard_changes): one pre-approved within its limits, one that always asks.
DEMO_TEMPLATES: list[dict[str, Any]] = [
    {"slug": "db-index-online", "name": "Add a database index (online)", "type": "OPERATION_CHANGE",
     "defaults": {"reason": "Add an index, built concurrently (no table lock)", "risk_level": "low",
                  "justification": "Standard change: the index is built online and can be dropped at once."},
     "pre_approved": True, "limits": {"max_amount_minor": None, "max_risk_level": "low"}},
    {"slug": "prod-schema-migration", "name": "Production schema migration", "type": "OPERATION_CHANGE",
     "defaults": {"reason": "Schema migration on the production database", "risk_level": "high",
                  "urgency": "normal"},
     "pre_approved": False},
]


def _derive(*parts: str) -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), ":".join(("demo", *parts)).encode(), hashlib.sha256).digest()


def _token(prefix: str, *parts: str) -> str:
    return prefix + base64.urlsafe_b64encode(_derive(*parts)).decode().rstrip("=")


def _ensure_credential(model: type[ApiKey] | type[PersonalToken], secret: str, create: Any, actor: Actor) -> None:
    existing = model.objects.filter(digest=secret_digest(secret)).first()
    if existing is None:
        create(secret)
    elif existing.revoked_at is not None:
        credential_restore(credential=existing, actor=actor)


@transaction.atomic
def seed_demo(slug: str = "demo") -> dict[str, Any]:
    """Create or refresh the demo tenant; return the CONTRACT.md `seed_demo --json` object."""
    tenant = Tenant.objects.filter(slug=slug).first() or tenant_create(slug=slug, name=f"{slug.title()} Ltd")
    actor = Actor.for_system(tenant, "seed_demo")

    for spec in DEMO_POLICIES:
        fields = {"ladder": list(LADDER), "max_escalation_level": 2, "notify_channels": ["email", "in_app", "push"],
                  **spec}
        Policy.objects.get_or_create(tenant=tenant, type=fields.pop("type"), defaults=fields)
    TriggerRule.objects.get_or_create(
        tenant=tenant, kind=TriggerRule.Kind.FLAG, flag="vendor_flagged",
        defaults={"escalation_type": "VENDOR_FLAGGED", "priority": 10})
    TriggerRule.objects.get_or_create(
        tenant=tenant, kind=TriggerRule.Kind.AMOUNT_AT_LEAST, currency="NGN",
        defaults={"escalation_type": "HIGH_VALUE", "threshold_minor": HIGH_VALUE_THRESHOLD_KOBO, "priority": 20})
    for template in DEMO_TEMPLATES:
        slug_of, fields = template["slug"], {k: v for k, v in template.items() if k != "slug"}
        if not ChangeTemplate.objects.filter(tenant=tenant, slug=slug_of).exists():
            template_upsert(actor=actor, slug=slug_of, fields=fields)

    vendor_secret = _token(API_KEY_PREFIX, slug, "vendor")
    _ensure_credential(ApiKey, vendor_secret,
                       lambda s: api_key_create(tenant=tenant, name="vendor", actor=actor, secret=s), actor)

    users = []
    for name, role, full_name, phone in DEMO_PEOPLE:
        username = name if slug == "demo" else f"{slug}-{name}"
        email = f"{username}@{slug}.example"
        password = f"{name}-" + _derive(slug, name, "password").hex()[:12]
        first, last = full_name.split(" ", 1)
        user = User.objects.filter(username=username).first() or User(username=username)
        user.email, user.first_name, user.last_name, user.phone_number = email, first, last, phone
        # The demo operator runs the admin; real deployments grant staff status deliberately.
        user.is_staff = user.is_superuser = role == Role.OPERATOR
        user.set_password(password)
        user.save()
        if not Membership.objects.filter(user=user, tenant=tenant, role=role, is_active=True).exists():
            membership_add(tenant=tenant, user=user, role=role, actor=actor)
        totp_key = _derive(slug, name, "totp")[:20]
        SealedTOTPDevice.objects.update_or_create(user=user, name="demo authenticator",
                                            defaults={"key": totp_key.hex(), "confirmed": True})  # type: ignore[misc]  # key is a property (sealed seed), not a field
        api_token = _token(TOKEN_PREFIX, slug, name, "token")
        _ensure_credential(PersonalToken, api_token, lambda s, u=user: personal_token_create(
            user=u, tenant=tenant, name="demo token", actor=actor, secret=s), actor)
        users.append({"username": username, "email": email, "role": str(role), "password": password,
                      "totp_secret": base64.b32encode(totp_key).decode(), "api_token": api_token})
    return {"tenant": slug, "api_keys": {"vendor": vendor_secret}, "users": users}
