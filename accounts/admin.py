"""The operators' admin for tenants, people, memberships, capabilities and credentials.

Every write goes through accounts.services (or accounts.totp), so the admin leaves the same audit
trail as the API: a membership added here joins the role's group, a credential is created with
its secret shown exactly once and only its digest stored, a revocation is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet, model_to_dict
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import get_perms
from simple_history.admin import SimpleHistoryAdmin

from audit.actions import AuditAction
from audit.services import audit_record

from .actors import Actor
from .delegations import delegation_revoke
from .models import ApiKey, Delegation, Membership, PersonalToken, Tenant, TenantRoleGroup, User
from .roles import Capability
from .selectors import tenant_roles, tenants_of
from .services import (
    api_key_create,
    capability_grant,
    capability_revoke,
    credential_revoke,
    membership_add,
    membership_deactivate,
    personal_token_create,
    tenant_create,
    tenant_role_group,
)
from .totp import totp_device_reset


class ServiceBackedHistoryAdmin(SimpleHistoryAdmin):
    """Field-level history to read, but no "revert to this version": reverting saves the model
    directly, which would bypass the services and their audit events."""

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


def operator_actor(request: HttpRequest, tenant: Tenant) -> Actor:
    """The operator, acting in `tenant` (for the audit trail; admin access itself is Django's staff check)."""
    return Actor(tenant=tenant, user=request.user)  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser


def audited_save(request: HttpRequest, obj: Any, *, tenant: Tenant, action: AuditAction, target_type: str) -> None:
    """Save an admin edit of a model that has no service of its own, with its audit event, in one transaction."""
    with transaction.atomic():
        old = type(obj).objects.select_for_update().filter(pk=obj.pk).first() if obj.pk else None
        obj.save()
        audit_record(tenant_id=tenant.pk, action=action, actor=operator_actor(request, tenant), target_type=target_type,
                     target_id=obj.pk, before=model_to_dict(old) if old else None, after=model_to_dict(obj))


# --- tenants and the capability matrix -----------------------------------------------------------


class MembershipInline(admin.TabularInline[Membership, Any]):
    model = Membership
    fields = ("user", "role", "is_active", "created_at")
    readonly_fields = ("user", "role", "is_active", "created_at")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # add people through Memberships, which goes through membership_add


@admin.register(Tenant)
class TenantAdmin(ServiceBackedHistoryAdmin):
    list_display = ("slug", "name", "locale", "single_employee_mode", "email_otp_allowed", "created_at")
    list_filter = ("single_employee_mode", "email_otp_allowed")
    search_fields = ("slug", "name")
    readonly_fields = ("created_at",)
    inlines = [MembershipInline]
    change_form_template = "admin/accounts/tenant/change_form.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> tuple[str, ...]:
        return ("slug", "created_at") if obj else ("created_at",)

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        if change:
            audited_save(request, obj, tenant=obj, action=AuditAction.TENANT_CHANGED, target_type="tenant")
            return
        # A new tenant gets its role groups and the default capability matrix from the service.
        created = tenant_create(slug=obj.slug, name=obj.name, single_employee_mode=obj.single_employee_mode)
        obj.pk, obj._state.adding = created.pk, False
        Tenant.objects.filter(pk=created.pk).update(
            email_otp_allowed=obj.email_otp_allowed, audit_retention_days=obj.audit_retention_days,
            locale=obj.locale, language=obj.language, customer_approved_text=obj.customer_approved_text,
            customer_rejected_text=obj.customer_rejected_text)

    def get_urls(self) -> list[Any]:
        custom = [path("<int:tenant_id>/capabilities/", self.admin_site.admin_view(self.capabilities_view),
                       name="accounts_tenant_capabilities")]
        return custom + super().get_urls()

    def capabilities_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        """The role x capability matrix of one tenant, edited with checkboxes (grants and revokes are audited)."""
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        if not self.has_change_permission(request, tenant):
            return HttpResponseRedirect(reverse("admin:index"))
        # The built-ins and the tenant's custom roles (accounts.selectors.tenant_roles), one row each.
        roles = [RoleRow(key, label) for key, label in tenant_roles(tenant=tenant).items()]
        current = {role.value: {c.replace("_", ".", 1)
                                for c in get_perms(tenant_role_group(tenant=tenant, role=role.value), tenant)}
                   for role in roles}
        if request.method == "POST":
            actor = operator_actor(request, tenant)
            changes = 0
            for role in roles:
                for capability in Capability:
                    wanted = request.POST.get(f"{role.value}|{capability.value}") == "on"
                    has = capability.value in current[role.value]
                    if wanted and not has:
                        capability_grant(tenant=tenant, role=role.value, capability=capability.value, actor=actor)
                        changes += 1
                    elif has and not wanted:
                        capability_revoke(tenant=tenant, role=role.value, capability=capability.value, actor=actor)
                        changes += 1
            self.message_user(request, f"Capabilities of {tenant.slug} saved ({changes} change{'s' if changes != 1 else ''}).",
                              messages.SUCCESS)
            return HttpResponseRedirect(request.path)
        rows = [{"role": role, "cells": [{"capability": c, "name": f"{role.value}|{c.value}",
                                          "checked": c.value in current[role.value]} for c in Capability]}
                for role in roles]
        context = {**self.admin_site.each_context(request), "title": f"Capabilities in {tenant.name}",
                   "tenant": tenant, "capabilities": list(Capability), "rows": rows, "opts": self.model._meta}
        return TemplateResponse(request, "admin/accounts/tenant/capabilities.html", context)


@admin.register(TenantRoleGroup)
class TenantRoleGroupAdmin(admin.ModelAdmin[TenantRoleGroup]):
    list_display = ("tenant", "role", "group")
    list_filter = ("tenant", "role")
    search_fields = ("tenant__slug", "group__name")
    readonly_fields = ("tenant", "role", "group")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created with the tenant; edit capabilities on the tenant's matrix page


# --- people ----------------------------------------------------------------------------------------


class UserMembershipInline(MembershipInline):
    fk_name = "user"
    fields = ("tenant", "role", "is_active", "created_at")
    readonly_fields = ("tenant", "role", "is_active", "created_at")


class AddMembershipFormSet(BaseInlineFormSet[Membership, User, forms.ModelForm[Membership]]):
    """Marks the rows of AddMembershipInline, which UserAdmin.save_formset saves through the service."""


class AddMembershipInline(admin.TabularInline[Membership, User]):
    """Give the person a role on the same page (adding a person, or another role later); saved by membership_add."""

    model = Membership
    fk_name = "user"
    fields = ("tenant", "role")
    formset = AddMembershipFormSet
    extra = 1
    can_delete = False
    verbose_name = "role to give"
    verbose_name_plural = "Give a role (tenant and role)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return super().get_queryset(request).none()  # only new rows: the roles held are listed read-only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request, obj)


@admin.register(User)
class UserAdmin(DjangoUserAdmin[User]):
    list_display = ("username", "email", "first_name", "last_name", "is_active", "is_staff")
    list_filter = ("is_active", "is_staff", "is_superuser", "memberships__tenant", "memberships__role")
    search_fields = ("username", "email", "first_name", "last_name", "phone_number")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Contact", {"fields": ("phone_number",)}))  # type: ignore[misc]  # django-stubs' fieldsets type is narrower than Django's tuples
    inlines = [UserMembershipInline, AddMembershipInline]
    actions = ["reset_authenticator"]
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "usable_password", "password1", "password2")}),
        ("Person", {"classes": ("wide",), "fields": ("first_name", "last_name", "email", "phone_number")}),
    )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """New roles go through membership_add (group, audit event), in the page's one transaction."""
        if not isinstance(formset.instance, User) or not isinstance(formset, AddMembershipFormSet):
            super().save_formset(request, form, formset, change)
            return
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []  # the change message
        for row in formset.forms:
            data = getattr(row, "cleaned_data", None) or {}
            if row.has_changed() and data.get("tenant") and data.get("role"):
                formset.new_objects.append(membership_add(tenant=data["tenant"], user=form.instance, role=data["role"],
                                                          actor=operator_actor(request, data["tenant"])))

    @admin.action(description="Reset authenticator (TOTP): remove the person's devices so they enrol again")
    def reset_authenticator(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        removed = 0
        for user in queryset:
            tenant = tenants_of(user=user).first()
            removed += totp_device_reset(user=user, actor=operator_actor(request, tenant) if tenant else None,
                                         operator=request.user)  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
        self.message_user(request, f"Removed {removed} authenticator device(s) of {queryset.count()} person(s). "
                                   "They set up a new one at their next sign-in.", messages.SUCCESS)


class RoleRow(NamedTuple):
    value: str
    label: str


class MembershipForm(forms.ModelForm[Membership]):
    # Built-in and custom roles; clean() checks the role is one of the chosen tenant's (tenant_roles).
    role = forms.CharField(max_length=32, help_text="A built-in role (e.g. compliance_officer) or a custom role of "
                                                    "the tenant (Custom roles).")

    class Meta:
        model = Membership
        fields = ("tenant", "user", "role")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant, role = data.get("tenant"), data.get("role")
        if tenant and role and role not in tenant_roles(tenant=tenant):
            self.add_error("role", f"Not a role of {tenant.slug}: " + ", ".join(tenant_roles(tenant=tenant)) + ".")
        return data


@admin.register(Membership)
class MembershipAdmin(ServiceBackedHistoryAdmin):
    form = MembershipForm
    list_display = ("user", "tenant", "role", "is_active", "created_at")
    list_filter = ("tenant", "role", "is_active")
    search_fields = ("user__username", "user__email", "tenant__slug")
    autocomplete_fields = ("user",)
    actions = ["deactivate"]

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> tuple[str, ...]:
        return ("tenant", "user", "role", "is_active", "created_at") if obj else ()

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if change:
            return  # memberships are changed by actions (deactivate), never edited in place
        created = membership_add(tenant=obj.tenant, user=obj.user, role=obj.role, actor=operator_actor(request, obj.tenant))
        obj.pk, obj._state.adding = created.pk, False

    @admin.action(description="Deactivate the selected memberships")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        done = 0
        for membership in queryset.filter(is_active=True).select_related("tenant", "user"):
            membership_deactivate(membership=membership, actor=operator_actor(request, membership.tenant))
            done += 1
        self.message_user(request, f"Deactivated {done} membership(s).", messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # keep the record; deactivate instead


# --- credentials -------------------------------------------------------------------------------------


class CredentialAdminMixin:
    """Create shows the secret once (a message) and stores only its digest; revoke is an audited action."""

    add_fields: tuple[str, ...]  # each credential admin's own
    readonly_fields: ClassVar[list[str] | tuple[str, ...]] = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions: Sequence[Any] | None = ["revoke"]  # ModelAdmin's, whose item type names the admin class

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.add_fields if obj is None else (*self.add_fields, *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return (*self.add_fields, *self.readonly_fields) if obj else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a credential is revoked, never deleted: the audit trail refers to it

    def _show_secret_once(self, request: HttpRequest, secret: str) -> None:
        messages.warning(request, f"Copy this secret now; it is shown only once and cannot be recovered: {secret}")

    @admin.action(description="Revoke the selected credentials")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        count = 0
        for credential in queryset.filter(revoked_at__isnull=True).select_related("tenant"):
            credential_revoke(credential=credential, actor=operator_actor(request, credential.tenant))
            count += 1
        messages.success(request, f"Revoked {count} credential(s).")


@admin.register(ApiKey)
class ApiKeyAdmin(CredentialAdminMixin, ServiceBackedHistoryAdmin):
    add_fields = ("tenant", "name")
    list_display = ("name", "tenant", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "tenant__slug")

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            return
        key, secret = api_key_create(tenant=obj.tenant, name=obj.name, actor=operator_actor(request, obj.tenant))
        obj.pk, obj.prefix, obj._state.adding = key.pk, key.prefix, False
        self._show_secret_once(request, secret)


class PersonalTokenForm(forms.ModelForm[PersonalToken]):
    class Meta:
        model = PersonalToken
        fields = ("user", "tenant", "name")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        user, tenant = data.get("user"), data.get("tenant")
        if user and tenant and not Membership.objects.filter(user=user, tenant=tenant, is_active=True).exists():
            raise forms.ValidationError("This person has no active role in that tenant; a token would act as nobody.")
        return data


@admin.register(PersonalToken)
class PersonalTokenAdmin(CredentialAdminMixin, ServiceBackedHistoryAdmin):
    form = PersonalTokenForm
    add_fields = ("user", "tenant", "name")
    list_display = ("name", "user", "tenant", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "user__username", "user__email", "tenant__slug")
    autocomplete_fields = ("user",)

    def save_model(self, request: HttpRequest, obj: PersonalToken, form: Any, change: bool) -> None:
        if change:
            return
        token, secret = personal_token_create(user=obj.user, tenant=obj.tenant, name=obj.name,
                                              actor=operator_actor(request, obj.tenant))
        obj.pk, obj.prefix, obj._state.adding = token.pk, token.prefix, False
        self._show_secret_once(request, secret)


# django-otp's TOTP device admin would create devices whose seed is stored in clear: TrustGuard's devices are
# SealedTOTPDevice (encrypted seeds), enrolled by their owners and reset with the People action above.
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)


# --- out of office -----------------------------------------------------------------------------------


class DelegationStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s.value, s.label) for s in Delegation.Status]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Delegation]) -> QuerySet[Delegation]:
        from django.utils import timezone

        now, value = timezone.now(), self.value()
        live = queryset.filter(revoked_at__isnull=True)
        by_status: dict[str | None, QuerySet[Delegation]] = {
            Delegation.Status.REVOKED: queryset.filter(revoked_at__isnull=False),
            Delegation.Status.SCHEDULED: live.filter(starts_at__gt=now),
            Delegation.Status.ACTIVE: live.filter(starts_at__lte=now, ends_at__gt=now),
            Delegation.Status.ENDED: live.filter(ends_at__lte=now),
        }
        return by_status.get(value, queryset)


@admin.register(Delegation)
class DelegationAdmin(admin.ModelAdmin[Delegation]):
    """Who is away and who stands in: read-only rows (people set them on their "I'm away" page or through the API);
    operators end one with the audited action."""

    list_display = ("delegator", "delegate", "tenant", "starts_at", "ends_at", "types", "status", "created_by")
    list_filter = (DelegationStatusFilter, "tenant", ("delegate", admin.EmptyFieldListFilter))
    search_fields = ("delegator__username", "delegate__username", "tenant__slug")
    date_hierarchy = "starts_at"
    actions = ["end_now"]
    readonly_fields = ("tenant", "delegator", "delegate", "starts_at", "ends_at", "escalation_types", "created_by",
                       "created_at", "revoked_at", "revoked_by", "started_at", "ended_at")

    @admin.display(description="types")
    def types(self, obj: Delegation) -> str:
        return ", ".join(obj.escalation_types) or "every type"

    @admin.display(description="status")
    def status(self, obj: Delegation) -> str:
        from django.utils import timezone

        return obj.status_at(timezone.now())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # set by the person (or an operator) through the away page or POST /delegations: one path

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # ended, never deleted: the audit trail and decisions refer to it

    @admin.action(description="End the selected delegations now")
    def end_now(self, request: HttpRequest, queryset: QuerySet[Delegation]) -> None:
        from django.utils import timezone

        done = 0
        for delegation in queryset.select_related("tenant"):
            if delegation.status_at(timezone.now()) not in (Delegation.Status.ACTIVE, Delegation.Status.SCHEDULED):
                continue
            delegation_revoke(actor=operator_actor(request, delegation.tenant), delegation_id=delegation.pk)
            done += 1
        self.message_user(request, f"Ended {done} delegation(s).", messages.SUCCESS)
