"""API keys and personal tokens: created with the secret shown once, revoked through the service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext, gettext_lazy, ngettext
from django_otp.plugins.otp_totp.models import TOTPDevice

from ..models import ApiKey, Membership, PersonalToken
from ..services import (
    api_key_create,
    credential_revoke,
    personal_token_create,
)
from .base import ServiceBackedHistoryAdmin, operator_actor


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
        messages.warning(request, gettext("Copy this secret now; it is shown only once and cannot be recovered: %(secret)s")
                         % {"secret": secret})

    @admin.action(description=gettext_lazy("Revoke the selected credentials"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        count = 0
        for credential in queryset.filter(revoked_at__isnull=True).select_related("tenant"):
            credential_revoke(credential=credential, actor=operator_actor(request, credential.tenant))
            count += 1
        messages.success(request, ngettext("Revoked %(count)d credential.", "Revoked %(count)d credentials.", count)
                         % {"count": count})


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
            raise forms.ValidationError(gettext("This person has no active role in that tenant; a token would act as "
                                                "nobody."))
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
