"""Tenants, memberships and credentials in the admin, with their field-level history (simple-history).

Read-only here: every change goes through accounts.services, which audits it; an admin form
saving the model directly would bypass the audit trail.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from .models import ApiKey, Membership, PersonalToken, Tenant


class HistoryReadOnlyAdmin(SimpleHistoryAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # no "revert to this version" either: that, too, would bypass the services


@admin.register(Tenant)
class TenantAdmin(HistoryReadOnlyAdmin):
    list_display = ("slug", "name", "single_employee_mode", "audit_retention_days", "created_at")
    search_fields = ("slug", "name")


@admin.register(Membership)
class MembershipAdmin(HistoryReadOnlyAdmin):
    list_display = ("user", "tenant", "role", "is_active", "created_at")
    list_filter = ("tenant", "role", "is_active")


@admin.register(ApiKey)
class ApiKeyAdmin(HistoryReadOnlyAdmin):
    list_display = ("name", "tenant", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant",)
    exclude = ("digest",)


@admin.register(PersonalToken)
class PersonalTokenAdmin(HistoryReadOnlyAdmin):
    list_display = ("name", "user", "tenant", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("tenant",)
    exclude = ("digest",)
