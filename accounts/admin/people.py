"""People and their memberships (roles in tenants)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.translation import gettext, gettext_lazy, ngettext

from ..models import Membership, User
from ..selectors import tenant_roles, tenants_of
from ..services import (
    membership_add,
    membership_deactivate,
)
from ..totp import totp_device_reset
from .base import ServiceBackedHistoryAdmin, operator_actor
from .tenants import MembershipInline


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
    verbose_name = gettext_lazy("role to give")
    verbose_name_plural = gettext_lazy("Give a role (tenant and role)")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return super().get_queryset(request).none()  # only new rows: the roles held are listed read-only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request, obj)


@admin.register(User)
class UserAdmin(DjangoUserAdmin[User]):
    list_display = ("username", "email", "first_name", "last_name", "is_active", "is_staff")
    list_filter = ("is_active", "is_staff", "is_superuser", "memberships__tenant", "memberships__role")
    search_fields = ("username", "email", "first_name", "last_name", "phone_number")
    fieldsets = (*DjangoUserAdmin.fieldsets, (gettext_lazy("Contact"), {"fields": ("phone_number",)}))  # type: ignore[misc]  # django-stubs' fieldsets type is narrower than Django's tuples
    inlines = [UserMembershipInline, AddMembershipInline]
    actions = ["reset_authenticator"]
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "usable_password", "password1", "password2")}),
        (gettext_lazy("Person"), {"classes": ("wide",), "fields": ("first_name", "last_name", "email", "phone_number")}),
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

    @admin.action(description=gettext_lazy("Reset authenticator (TOTP): remove the person's devices so they enrol again"))
    def reset_authenticator(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        removed = 0
        for user in queryset:
            tenant = tenants_of(user=user).first()
            removed += totp_device_reset(user=user, actor=operator_actor(request, tenant) if tenant else None,
                                         operator=request.user)  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
        self.message_user(request, gettext("Removed %(removed)d authenticator device(s) of %(people)d person(s). They set up a "
                                           "new one at their next sign-in.") % {"removed": removed, "people": queryset.count()},
                          messages.SUCCESS)


class MembershipForm(forms.ModelForm[Membership]):
    # Built-in and custom roles; clean() checks the role is one of the chosen tenant's (tenant_roles).
    role = forms.CharField(max_length=32, label=gettext_lazy("Role"),
                           help_text=gettext_lazy("A built-in role (e.g. compliance_officer) or a custom role of the "
                                                  "tenant (Custom roles)."))

    class Meta:
        model = Membership
        fields = ("tenant", "user", "role")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant, role = data.get("tenant"), data.get("role")
        if tenant and role and role not in tenant_roles(tenant=tenant):
            self.add_error("role", gettext("Not a role of %(tenant)s: %(roles)s.")
                           % {"tenant": tenant.slug, "roles": ", ".join(tenant_roles(tenant=tenant))})
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

    @admin.action(description=gettext_lazy("Deactivate the selected memberships"))
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        done = 0
        for membership in queryset.filter(is_active=True).select_related("tenant", "user"):
            membership_deactivate(membership=membership, actor=operator_actor(request, membership.tenant))
            done += 1
        self.message_user(request, ngettext("Deactivated %(count)d membership.", "Deactivated %(count)d memberships.", done)
                          % {"count": done}, messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # keep the record; deactivate instead
