"""The audit log in the admin: read-only (the database would refuse a change anyway)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .actions import AuditAction, action_label
from .models import AuditChainHead, AuditCheckpoint, AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ActionFilter(admin.SimpleListFilter):
    """The actions of the catalogue, by label (no scan of the table for its distinct values)."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return sorted(((str(value), str(label)) for value, label in AuditAction.choices), key=lambda c: c[1])

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "chain_key", "seq", "action", "what", "actor_label", "target_type", "target_id", "ip",
                    "request_id")
    list_filter = (ActionFilter, "actor_type", "target_type", "tenant")
    search_fields = ("=target_id", "=request_id", "actor_label", "=actor_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_select_related = ("tenant",)
    show_full_result_count = False  # counting millions of rows on every page is slow

    @admin.display(description="what")
    def what(self, event: AuditEvent) -> str:
        return action_label(event.action)


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("chain_key", "seq", "pruned_count", "created_at")


@admin.register(AuditChainHead)
class AuditChainHeadAdmin(ReadOnlyAdmin):
    list_display = ("chain_key", "last_seq", "last_hash")
