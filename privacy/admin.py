"""Operators see that subjects exist and whether they were erased, never a key or a personal value."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import PrivacySettings, Subject


@admin.register(Subject)
class SubjectAdmin(admin.ModelAdmin[Subject]):
    list_display = ("id", "tenant", "created_at", "erased_at", "held_until")
    list_filter = ("tenant",)
    exclude = ("wrapped_key",)
    readonly_fields = ("id", "tenant", "created_at", "erased_at", "held_until")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PrivacySettings)
class PrivacySettingsAdmin(admin.ModelAdmin[PrivacySettings]):
    list_display = ("tenant", "legal_hold_mode", "aml_retention_days", "updated_at")
