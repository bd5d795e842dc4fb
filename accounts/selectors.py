"""Reads about people, roles and capabilities."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet

from .models import Membership, Tenant, User


def user_roles(*, user: User, tenant: Tenant) -> frozenset[str]:
    return frozenset(
        Membership.objects.filter(user=user, tenant=tenant, is_active=True).values_list("role", flat=True)
    )


def user_capabilities(*, user: User, tenant: Tenant) -> frozenset[str]:
    """Capabilities granted on the tenant object to the user's tenant-role groups (or to the user).

    One query: guardian's group and user object permissions, joined to the permission names.
    """
    if not user.is_active:
        return frozenset()
    ct = ContentType.objects.get_for_model(Tenant)
    pk = str(tenant.pk)
    via_groups = Permission.objects.filter(
        content_type=ct,
        groupobjectpermission__object_pk=pk,
        groupobjectpermission__content_type=ct,
        groupobjectpermission__group__user=user,
        groupobjectpermission__group__tenant_role__tenant=tenant,
    ).order_by().values_list("codename", flat=True)
    direct = Permission.objects.filter(
        content_type=ct,
        userobjectpermission__object_pk=pk,
        userobjectpermission__content_type=ct,
        userobjectpermission__user=user,
    ).order_by().values_list("codename", flat=True)
    codenames = via_groups.union(direct)
    # Codenames are capability names with "_" for the first ".": escalation_view -> escalation.view
    return frozenset(c.replace("_", ".", 1) for c in codenames)


def role_members(*, tenant: Tenant, role: str) -> QuerySet[User]:
    return User.objects.filter(
        memberships__tenant=tenant, memberships__role=role, memberships__is_active=True, is_active=True
    ).distinct()


def role_has_active_member(*, tenant: Tenant, role: str) -> bool:
    return Membership.objects.filter(tenant=tenant, role=role, is_active=True, user__is_active=True).exists()


def tenants_of(*, user: User) -> QuerySet[Tenant]:
    return Tenant.objects.filter(memberships__user=user, memberships__is_active=True).distinct()
