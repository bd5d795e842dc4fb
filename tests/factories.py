"""factory_boy factories: the few rows a test needs, made through the product's own services.

Call `Factory.create(...)` (typed: it returns the model instance).

Each factory's `_create` calls the service a user or operator would go through (tenant_create, membership_add,
api_key_create, policy_upsert, escalation_create), so a row made here is audited and shaped exactly as in
production. Use them where two rows will do; the whole demo (`demo` fixture) is for contract tests that speak
of the demo tenant of CONTRACT.md.

    tenant = TenantFactory.create()
    ceo = PersonFactory.create(tenant=tenant, role="ceo")
    PolicyFactory.create(tenant=tenant, type="SMR", route=[{"roles": ["compliance_officer"], "approvals_required": 1}])
    case = EscalationFactory.create(tenant=tenant, type="SMR")
"""

from __future__ import annotations

import builtins
from typing import Any

import factory
from factory.django import DjangoModelFactory

from accounts.actors import Actor
from accounts.models import ApiKey, SealedTOTPDevice, Tenant, User
from accounts.services import api_key_create, membership_add, tenant_create
from escalations.intake import Money, SourceRef
from escalations.models import Escalation, Policy
from escalations.policies import policy_upsert
from escalations.services import escalation_create

PASSWORD = "correct horse battery"


def _provisioning(tenant: Tenant) -> Actor:
    return Actor.for_system(tenant, "test")


class TenantFactory(DjangoModelFactory[Tenant]):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())

    @classmethod
    def _create(cls, model_class: type[Tenant], *args: Any, **kwargs: Any) -> Tenant:
        return tenant_create(**kwargs)


class PersonFactory(DjangoModelFactory[User]):
    """A person with a role in a tenant and a confirmed authenticator (TOTP), as an operator adds them."""

    class Meta:
        model = User

    tenant = factory.SubFactory(TenantFactory)
    role = "compliance_officer"
    username = factory.Sequence(lambda n: f"person-{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@{o.tenant.slug}.example")

    @classmethod
    def _create(cls, model_class: type[User], *args: Any, tenant: Tenant, role: str, **kwargs: Any) -> User:
        user = User.objects.create_user(password=PASSWORD, **kwargs)
        membership_add(tenant=tenant, user=user, role=role, actor=_provisioning(tenant))
        SealedTOTPDevice.objects.create(user=user, name="phone", confirmed=True)
        return user


class ApiKeyFactory(DjangoModelFactory[ApiKey]):
    """A source system's key. The secret, shown once, is on the instance as `.secret`."""

    class Meta:
        model = ApiKey

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"source-{n}")

    @classmethod
    def _create(cls, model_class: type[ApiKey], *args: Any, tenant: Tenant, name: str, **kwargs: Any) -> ApiKey:
        key, secret = api_key_create(tenant=tenant, name=name, actor=_provisioning(tenant), **kwargs)
        key.secret = secret  # type: ignore[attr-defined]
        return key


class PolicyFactory(DjangoModelFactory[Policy]):
    """A policy as an operator saves it (validated, versioned, audited). Keyword arguments are policy fields."""

    class Meta:
        model = Policy

    tenant = factory.SubFactory(TenantFactory)
    type = "SMR"
    route = factory.LazyFunction(lambda: [{"roles": ["compliance_officer"], "approvals_required": 1}])

    @classmethod
    def _create(cls, model_class: builtins.type[Policy], *args: Any, tenant: Tenant, type: str, **fields: Any) -> Policy:
        return policy_upsert(tenant=tenant, type=type, fields=fields, actor=_provisioning(tenant))


class EscalationFactory(DjangoModelFactory[Escalation]):
    """A case a source system raised through the one create path. Its type's policy is made when missing."""

    class Meta:
        model = Escalation

    tenant = factory.SubFactory(TenantFactory)
    type = "SMR"
    reason = "Odd pattern on the account"
    entity_id = factory.Sequence(lambda n: f"AC-{n}")
    source_key = factory.LazyAttribute(lambda o: ApiKeyFactory.create(tenant=o.tenant))
    amount_minor: int | None = None
    currency = "NGN"

    @classmethod
    def _create(cls, model_class: builtins.type[Escalation], *args: Any, tenant: Tenant, type: str, reason: str, entity_id: str,
                source_key: ApiKey, amount_minor: int | None, currency: str, **kwargs: Any) -> Escalation:
        if not Policy.objects.filter(tenant=tenant, type=type).exists():
            PolicyFactory.create(tenant=tenant, type=type)
        amount = Money(value_minor=amount_minor, currency=currency) if amount_minor is not None else None
        return escalation_create(actor=Actor(tenant=tenant, api_key=source_key), type=type, reason=reason, amount=amount,
                                 source=SourceRef(system="bank", entity_type="account", entity_id=entity_id), **kwargs)


def shop_whose_large_orders_reach_its_ceo(**tenant_fields: Any) -> Tenant:
    """A tenant whose HIGH_VALUE orders go to its CEO (username "ceo") by email and in the inbox."""
    tenant = TenantFactory.create(**tenant_fields)
    PolicyFactory.create(tenant=tenant, type="HIGH_VALUE", route=[{"roles": ["ceo"], "approvals_required": 1}],
                         notify_channels=["email", "in_app"])
    PersonFactory.create(tenant=tenant, role="ceo", username="ceo")
    return tenant
