"""Reads about people, roles and capabilities."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Q, QuerySet

from trustguard.zones import zone_named

from .models import CustomRole, Membership, Tenant, TenantRoleGroup, User
from .roles import Role


def zone_of(*, tenant: Tenant | None, user: User | None = None) -> ZoneInfo:
    """The time zone a person reads times in (pages, messages, quiet hours, the dates of an absence): their own,
    else their tenant's, else the site's (settings.TIME_ZONE). The one rule; no query."""
    return zone_named(getattr(user, "time_zone", "") or "", tenant.time_zone if tenant is not None else "")


class LanguageAndZone(TypedDict):
    language: str
    time_zone: str


def language_and_zone(*, tenant: Tenant, user: User | None = None) -> LanguageAndZone:
    """How a person reads what we send them (a message's Recipient fields): their language, else their tenant's;
    and zone_of's time zone. Someone with no account (a customer) reads the tenant's."""
    return {"language": (user.language if user is not None else "") or tenant.language,
            "time_zone": zone_of(tenant=tenant, user=user).key}


def user_roles(*, user: User, tenant: Tenant) -> frozenset[str]:
    """The reference for user_authority's roles (the ORM reading; the application asks user_authority)."""
    return frozenset(
        Membership.objects.filter(user=user, tenant=tenant, is_active=True).values_list("role", flat=True)
    )


def user_capabilities(*, user: User, tenant: Tenant) -> frozenset[str]:
    """Capabilities granted on the tenant object to the user's tenant-role groups (or to the user).

    One query: guardian's group and user object permissions, joined to the permission names. The
    reference for user_authority, which the application asks (tests hold the two equal).
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


@functools.cache
def _authority_sql() -> str:
    """user_roles and user_capabilities as one statement (table names from the models, built once)."""
    from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

    def table(model: Any) -> str:
        return str(connection.ops.quote_name(model._meta.db_table))

    perm, membership, role_group = table(Permission), table(Membership), table(TenantRoleGroup)
    group_perm, user_perm = table(get_group_obj_perms_model()), table(get_user_obj_perms_model())
    user_groups = table(User.groups.through)
    # Quoted table names from the models' metadata; every value is a parameter.
    return f"""
        SELECT 'role', m.role FROM {membership} m
         WHERE m.is_active AND m.tenant_id = %(tenant)s AND m.user_id = %(user)s
        UNION
        SELECT 'capability', p.codename FROM {perm} p
          JOIN {group_perm} g ON g.permission_id = p.id
          JOIN {role_group} rg ON rg.group_id = g.group_id
          JOIN {user_groups} ug ON ug.group_id = g.group_id
         WHERE %(active)s AND p.content_type_id = %(ct)s AND g.content_type_id = %(ct)s
           AND rg.tenant_id = %(tenant)s AND ug.user_id = %(user)s AND g.object_pk = %(object_pk)s
        UNION
        SELECT 'capability', p.codename FROM {perm} p
          JOIN {user_perm} u ON u.permission_id = p.id
         WHERE %(active)s AND p.content_type_id = %(ct)s AND u.content_type_id = %(ct)s
           AND u.object_pk = %(object_pk)s AND u.user_id = %(user)s"""  # noqa: S608


def user_authority(*, user: User, tenant: Tenant) -> tuple[frozenset[str], frozenset[str]]:
    """(user_roles, user_capabilities) in one round trip: an API request by a person asks both."""
    params: dict[str, int | bool | str] = {
        "tenant": tenant.pk, "user": user.pk, "active": bool(user.is_active),
        "ct": ContentType.objects.get_for_model(Tenant).pk, "object_pk": str(tenant.pk)}
    with connection.cursor() as cursor:
        cursor.execute(_authority_sql(), params)
        rows = cursor.fetchall()
    roles = frozenset(value for kind, value in rows if kind == "role")
    # Codenames are capability names with "_" for the first ".": escalation_view -> escalation.view
    capabilities = frozenset(value.replace("_", ".", 1) for kind, value in rows if kind == "capability")
    return roles, capabilities


def role_members(*, tenant: Tenant, role: str) -> QuerySet[User]:
    return User.objects.filter(
        memberships__tenant=tenant, memberships__role=role, memberships__is_active=True, is_active=True
    ).distinct()


def role_has_active_member(*, tenant: Tenant, role: str) -> bool:
    return Membership.objects.filter(tenant=tenant, role=role, is_active=True, user__is_active=True).exists()


def tenants_of(*, user: User) -> QuerySet[Tenant]:
    return Tenant.objects.filter(memberships__user=user, memberships__is_active=True).distinct()


def is_member_email(*, tenant_id: int, email: str) -> bool:
    """Does a person of the tenant have this email (then it is the tenant's own staff, not a third party)?"""
    return Membership.objects.filter(tenant_id=tenant_id, user__email__iexact=email.strip()).exists()


def tenant_roles(*, tenant: Tenant | int) -> dict[str, str]:
    """The roles of a tenant: key -> label, the six built-ins first (labels in the active language), then the
    tenant's custom roles by key. The one answer to "is this a role here?" for policies (routes, ladders),
    memberships, routing and the admin's role pickers. People read a role through escalations.terminology.label,
    which adds the tenant's own wording on top."""
    roles = {role.value: str(role.label) for role in Role}
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    roles.update(CustomRole.objects.filter(tenant_id=tenant_id).order_by("key").values_list("key", "label"))
    return roles


def members_named(*, tenant: Tenant, usernames: Iterable[str]) -> list[User]:
    """The tenant's active people with these usernames (case-insensitive), e.g. the @mentions of a comment."""
    wanted = sorted({name.lower() for name in usernames if name})[:MAX_NAMED]
    if not wanted:
        return []
    named = Q()
    for name in wanted:
        named |= Q(username__iexact=name)
    return list(User.objects.filter(named, memberships__tenant=tenant, memberships__is_active=True, is_active=True)
                .distinct().order_by("pk"))


MAX_NAMED = 20


def member_states(*, tenant: Tenant, usernames: Iterable[str]) -> dict[str, bool]:
    """{username: active?} for the people of `tenant` among `usernames` (active: an active person with an active
    membership here); a name that is nobody of this tenant is absent, whether or not it exists elsewhere."""
    out: dict[str, bool] = {}
    names = sorted({name for name in usernames if isinstance(name, str) and name})
    for username, member_active, user_active in (Membership.objects.filter(tenant=tenant, user__username__in=names)
                                                 .values_list("user__username", "is_active", "user__is_active")):
        out[username] = out.get(username, False) or (member_active and user_active)
    return out


def named_members(*, tenant: Tenant, usernames: Iterable[str]) -> list[int]:
    """The ids of the active people of `tenant` with these exact usernames (a route's named people)."""
    names = sorted({name for name in usernames if name})
    if not names:
        return []
    return list(User.objects.filter(username__in=names, is_active=True, memberships__tenant=tenant,
                                    memberships__is_active=True).distinct().values_list("pk", flat=True))


def tenant_people(*, tenant: Tenant) -> list[tuple[str, str]]:
    """(username, "Full Name (username)") of the tenant's active people, by username: who a route may name."""
    people = (User.objects.filter(is_active=True, memberships__tenant=tenant, memberships__is_active=True)
              .distinct().order_by("username").only("username", "first_name", "last_name"))
    return [(u.username, f"{u.get_full_name()} ({u.username})" if u.get_full_name() else u.username) for u in people]
