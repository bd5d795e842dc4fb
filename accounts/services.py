"""Writes for tenants, memberships, capabilities and credentials. Each is one transaction with its audit row."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from audit.actions import AuditAction
from audit.services import audit_record
from trustguard.errors import NotAuthenticated, ValidationFailed
from trustguard.zones import check_time_zone

from .actors import Actor
from .models import ApiKey, CustomRole, Membership, PersonalToken, Tenant, TenantRoleGroup, User
from .roles import DEFAULT_MATRIX, Capability, Role, codename, role_key_problem
from .selectors import tenant_roles
from .tenant_config import mark_fresh

API_KEY_PREFIX = "tgk_"
TOKEN_PREFIX = "tgp_"
# Writing last_used_at on every request would turn every read into a write; a minute is enough.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def secret_digest(secret: str) -> str:
    """Keyed hash of a high-entropy secret: fast, and useless to whoever steals the table alone."""
    return hmac.new(settings.CREDENTIAL_PEPPER.encode(), secret.encode(), hashlib.sha256).hexdigest()


def _new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


# --- tenants, role groups and capabilities ---------------------------------------------------

def tenant_role_group(*, tenant: Tenant, role: str) -> Group:
    """The group of `role` in `tenant`, created with the default capabilities on first use."""
    link = TenantRoleGroup.objects.filter(tenant=tenant, role=role).select_related("group").first()
    if link:
        return link.group
    group, _ = Group.objects.get_or_create(name=f"{tenant.slug}:{role}")
    TenantRoleGroup.objects.create(tenant=tenant, role=role, group=group)
    for capability in DEFAULT_MATRIX.get(role, ()):  # a custom role starts with none (custom_role_create grants)
        assign_perm(codename(capability), group, tenant)
    return group


@transaction.atomic
def tenant_create(*, slug: str, name: str, actor: Actor | None = None, single_employee_mode: bool = False,
                  time_zone: str = "") -> Tenant:
    tenant = Tenant.objects.create(slug=slug, name=name, single_employee_mode=single_employee_mode,
                                   time_zone=check_time_zone(time_zone))
    for role in Role.values:
        tenant_role_group(tenant=tenant, role=role)
    audit_record(
        tenant_id=tenant.pk,
        action=AuditAction.TENANT_CREATED,
        actor=actor or Actor.for_system(tenant, "provisioning"),
        target_type="tenant",
        target_id=tenant.pk,
        after={"slug": slug, "name": name, "single_employee_mode": single_employee_mode, "time_zone": time_zone},
    )
    return tenant


def _check_role(tenant: Tenant, role: str) -> None:
    if role not in tenant_roles(tenant=tenant):
        raise ValidationFailed(f"unknown role {role!r}", errors={"role": ["Not a role of this tenant."]})


def _check_capability(capability: str) -> None:
    if capability not in Capability.values:
        raise ValidationFailed(f"unknown capability {capability!r}", errors={"capability": ["Unknown capability."]})


@transaction.atomic
def capability_grant(*, tenant: Tenant, role: str, capability: str, actor: Actor) -> None:
    _check_role(tenant, role)
    _check_capability(capability)
    assign_perm(codename(capability), tenant_role_group(tenant=tenant, role=role), tenant)
    audit_record(tenant_id=tenant.pk, action=AuditAction.CAPABILITY_GRANTED, actor=actor, target_type="role", target_id=role,
                 details={"capability": capability})


@transaction.atomic
def capability_revoke(*, tenant: Tenant, role: str, capability: str, actor: Actor) -> None:
    _check_role(tenant, role)
    _check_capability(capability)
    remove_perm(codename(capability), tenant_role_group(tenant=tenant, role=role), tenant)
    audit_record(tenant_id=tenant.pk, action=AuditAction.CAPABILITY_REVOKED, actor=actor, target_type="role", target_id=role,
                 details={"capability": capability})


@transaction.atomic
def custom_role_create(*, tenant: Tenant, key: str, label: str, capabilities: list[str] | tuple[str, ...] = (),
                       actor: Actor) -> CustomRole:
    """Add a role to a tenant (e.g. finance_director) with capabilities of the matrix; audited."""
    key = (key or "").strip()
    problem = role_key_problem(key)
    if problem is None and CustomRole.objects.filter(tenant=tenant, key=key).exists():
        problem = f"{key!r} is already a role of this tenant."
    if problem:
        raise ValidationFailed(f"key: {problem}", errors={"key": [problem]})
    if not (label or "").strip():
        raise ValidationFailed("label: required", errors={"label": ["This field is required."]})
    for capability in capabilities:
        _check_capability(capability)
    role = CustomRole.objects.create(tenant=tenant, key=key, label=label.strip())
    group = tenant_role_group(tenant=tenant, role=key)
    for capability in sorted(set(capabilities)):
        assign_perm(codename(capability), group, tenant)
    audit_record(tenant_id=tenant.pk, action=AuditAction.ROLE_CREATED, actor=actor, target_type="role", target_id=key,
                 after={"key": key, "label": role.label, "capabilities": sorted(set(capabilities))})
    return role


@transaction.atomic
def custom_role_rename(*, role: CustomRole, label: str, actor: Actor) -> CustomRole:
    """Change how a custom role reads (its key, named by policies and memberships, stays)."""
    if not (label or "").strip():
        raise ValidationFailed("label: required", errors={"label": ["This field is required."]})
    locked = CustomRole.objects.select_for_update().get(pk=role.pk)
    before = locked.label
    locked.label = label.strip()
    locked.save(update_fields=["label"])
    audit_record(tenant_id=locked.tenant_id, action=AuditAction.ROLE_CHANGED, actor=actor, target_type="role",
                 target_id=locked.key, before={"label": before}, after={"label": locked.label})
    return locked


@transaction.atomic
def user_preferences_set(*, user: User, language: str, time_zone: str, actor: Actor) -> User:
    """A person's language and time zone for pages and messages ("" = their tenant's), each change audited in the
    actor's tenant."""
    if language and language not in {code for code, _ in settings.LANGUAGES}:
        raise ValidationFailed(f"unknown language {language!r}", errors={"language": ["Not a language of this site."]})
    check_time_zone(time_zone)
    locked = User.objects.select_for_update().get(pk=user.pk)
    changes = [(field, action, getattr(locked, field), value)
               for field, action, value in (("language", AuditAction.LANGUAGE_CHANGED, language),
                                            ("time_zone", AuditAction.TIME_ZONE_CHANGED, time_zone))
               if getattr(locked, field) != value]
    for field, action, before, after in changes:
        setattr(locked, field, after)
        setattr(user, field, after)
        audit_record(tenant_id=actor.tenant.pk, action=action, actor=actor, target_type="user", target_id=user.pk,
                     before={field: before}, after={field: after})
    if changes:
        locked.save(update_fields=[field for field, *_ in changes])
    return locked


# --- memberships -------------------------------------------------------------------------------

@transaction.atomic
def membership_add(*, tenant: Tenant, user: User, role: str, actor: Actor) -> Membership:
    """Give `user` the `role` in `tenant` (reactivating a past membership)."""
    if role not in tenant_roles(tenant=tenant):
        raise ValidationFailed(f"unknown role {role!r}", errors={"role": ["Not a role of this tenant."]})
    membership, created = Membership.objects.get_or_create(user=user, tenant=tenant, role=role)
    if not created and not membership.is_active:
        membership.is_active = True
        membership.save(update_fields=["is_active"])
    user.groups.add(tenant_role_group(tenant=tenant, role=role))
    audit_record(tenant_id=tenant.pk, action=AuditAction.MEMBERSHIP_ADDED, actor=actor, target_type="user", target_id=user.pk,
                 after={"role": role, "username": user.username})
    return membership


@transaction.atomic
def membership_deactivate(*, membership: Membership, actor: Actor) -> Membership:
    membership.is_active = False
    membership.save(update_fields=["is_active"])
    membership.user.groups.remove(tenant_role_group(tenant=membership.tenant, role=membership.role))
    audit_record(tenant_id=membership.tenant_id, action=AuditAction.MEMBERSHIP_DEACTIVATED, actor=actor, target_type="user",
                 target_id=membership.user_id, before={"role": membership.role})
    return membership


# --- credentials --------------------------------------------------------------------------------

@transaction.atomic
def api_key_create(*, tenant: Tenant, name: str, actor: Actor, secret: str | None = None) -> tuple[ApiKey, str]:
    """A new key for a source system. Returns the key and its secret, which is never shown again.

    `secret` is for seed_demo's reproducible demo credentials only; everything else lets it be random.
    """
    secret = secret or _new_secret(API_KEY_PREFIX)
    key = ApiKey.objects.create(tenant=tenant, name=name, prefix=secret[:12], digest=secret_digest(secret),
                                created_by=actor.user)
    audit_record(tenant_id=tenant.pk, action=AuditAction.CREDENTIAL_CREATED, actor=actor, target_type="api_key",
                 target_id=key.pk, after={"name": name, "prefix": key.prefix})
    return key, secret


@transaction.atomic
def personal_token_create(*, user: User, tenant: Tenant, name: str, actor: Actor,
                          secret: str | None = None) -> tuple[PersonalToken, str]:
    secret = secret or _new_secret(TOKEN_PREFIX)
    token = PersonalToken.objects.create(user=user, tenant=tenant, name=name, prefix=secret[:12],
                                         digest=secret_digest(secret))
    audit_record(tenant_id=tenant.pk, action=AuditAction.CREDENTIAL_CREATED, actor=actor, target_type="personal_token",
                 target_id=token.pk, after={"name": name, "prefix": token.prefix, "user": user.username})
    return token, secret


@transaction.atomic
def credential_revoke(*, credential: ApiKey | PersonalToken, actor: Actor) -> ApiKey | PersonalToken:
    kind = "api_key" if isinstance(credential, ApiKey) else "personal_token"
    locked = type(credential).objects.select_for_update().get(pk=credential.pk)
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit_record(tenant_id=locked.tenant_id, action=AuditAction.CREDENTIAL_REVOKED, actor=actor, target_type=kind,
                     target_id=locked.pk, before={"prefix": locked.prefix})
    return locked


@transaction.atomic
def credential_restore(*, credential: ApiKey | PersonalToken, actor: Actor) -> ApiKey | PersonalToken:
    """Undo a revocation (the demo seed restores its well-known credentials); audited like the revocation."""
    kind = "api_key" if isinstance(credential, ApiKey) else "personal_token"
    locked = type(credential).objects.select_for_update().get(pk=credential.pk)
    if locked.revoked_at is not None:
        revoked_at, locked.revoked_at = locked.revoked_at, None
        locked.save(update_fields=["revoked_at"])
        audit_record(tenant_id=locked.tenant_id, action=AuditAction.CREDENTIAL_RESTORED, actor=actor, target_type=kind,
                     target_id=locked.pk, before={"prefix": locked.prefix, "revoked_at": revoked_at},
                     after={"prefix": locked.prefix, "revoked_at": None})
    return locked


def credential_authenticate(secret: str) -> Actor:
    """Resolve a bearer secret to an Actor. Unknown, revoked or malformed: NotAuthenticated (401)."""
    if secret.startswith(API_KEY_PREFIX):
        key = ApiKey.objects.select_related("tenant").filter(digest=secret_digest(secret)).first()
        if key is None or key.revoked_at is not None:
            raise NotAuthenticated("The API key is unknown or has been revoked.", slug="invalid-credential")
        _touch(key)
        return Actor(tenant=mark_fresh(key.tenant), api_key=key)
    if secret.startswith(TOKEN_PREFIX):
        token = PersonalToken.objects.select_related("tenant", "user").filter(digest=secret_digest(secret)).first()
        if token is None or token.revoked_at is not None or not token.user.is_active:
            raise NotAuthenticated("The token is unknown or has been revoked.", slug="invalid-credential")
        _touch(token)
        return Actor(tenant=mark_fresh(token.tenant), user=token.user, token=token)
    raise NotAuthenticated("The bearer secret is not a TrustGuard key or token.", slug="invalid-credential")


def _touch(credential: ApiKey | PersonalToken) -> None:
    now = timezone.now()
    if credential.last_used_at is None or now - credential.last_used_at > LAST_USED_RESOLUTION:
        type(credential).objects.filter(pk=credential.pk).update(last_used_at=now)
