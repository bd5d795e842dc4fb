"""Tenants and their capability matrix."""

from __future__ import annotations

from typing import Any, NamedTuple

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext, gettext_lazy, ngettext
from guardian.shortcuts import get_perms

from audit.actions import AuditAction
from trustguard.zones import time_zone_names

from ..models import Membership, Tenant, TenantRoleGroup
from ..roles import Capability
from ..selectors import tenant_roles
from ..services import (
    capability_grant,
    capability_revoke,
    tenant_create,
    tenant_role_group,
)
from .base import ServiceBackedHistoryAdmin, audited_save, operator_actor


class RoleRow(NamedTuple):
    value: str
    label: str


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

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "time_zone":  # a list to choose from, not a name to type
            return forms.ChoiceField(required=False, label=gettext_lazy("Time zone"), help_text=db_field.help_text,
                                     choices=[("", gettext("The site's (%(zone)s)") % {"zone": settings.TIME_ZONE}),
                                              *((name, name) for name in time_zone_names())])
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        if change:
            audited_save(request, obj, tenant=obj, action=AuditAction.TENANT_CHANGED, target_type="tenant")
            return
        # A new tenant gets its role groups and the default capability matrix from the service.
        created = tenant_create(slug=obj.slug, name=obj.name, single_employee_mode=obj.single_employee_mode)
        obj.pk, obj._state.adding = created.pk, False
        Tenant.objects.filter(pk=created.pk).update(
            email_otp_allowed=obj.email_otp_allowed, audit_retention_days=obj.audit_retention_days,
            locale=obj.locale, language=obj.language, time_zone=obj.time_zone,
            customer_approved_text=obj.customer_approved_text,
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
            self.message_user(request, ngettext("Capabilities of %(tenant)s saved (%(count)d change).",
                                               "Capabilities of %(tenant)s saved (%(count)d changes).", changes)
                              % {"tenant": tenant.slug, "count": changes}, messages.SUCCESS)
            return HttpResponseRedirect(request.path)
        rows = [{"role": role, "cells": [{"capability": c, "name": f"{role.value}|{c.value}",
                                          "checked": c.value in current[role.value]} for c in Capability]}
                for role in roles]
        context = {**self.admin_site.each_context(request),
                   "title": gettext("Capabilities in %(tenant)s") % {"tenant": tenant.name},
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
