"""The admin of custom roles: a tenant's own roles (e.g. finance_director) beside the six built-ins.

Created and renamed through accounts.services (audited); capabilities are chosen on creation and edited
afterwards on the tenant's capability matrix, like a built-in role's.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext, gettext_lazy

from trustguard.errors import ValidationFailed

from .admin import ServiceBackedHistoryAdmin, operator_actor
from .models import CustomRole
from .roles import Capability, role_key_problem
from .services import custom_role_create, custom_role_rename


class CustomRoleForm(forms.ModelForm[CustomRole]):
    capabilities = forms.MultipleChoiceField(
        choices=Capability.choices, required=False, widget=forms.CheckboxSelectMultiple, label=gettext_lazy("Capabilities"),
        help_text=gettext_lazy("What its members may do (later: the tenant's Capabilities page). An approver needs "
                               "escalation.view and escalation.decide."))

    class Meta:
        model = CustomRole
        fields = ("tenant", "key", "label")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk is None and data.get("tenant") and data.get("key"):
            problem = role_key_problem(data["key"])
            if problem is None and CustomRole.objects.filter(tenant=data["tenant"], key=data["key"]).exists():
                problem = gettext("Already a role of this tenant.")
            if problem:
                self.add_error("key", problem)
        return data


@admin.register(CustomRole)
class CustomRoleAdmin(ServiceBackedHistoryAdmin):
    form = CustomRoleForm
    list_display = ("key", "label", "tenant", "created_at")
    list_filter = ("tenant",)
    search_fields = ("key", "label", "tenant__slug")

    def get_fields(self, request: HttpRequest, obj: CustomRole | None = None) -> list[str]:  # type: ignore[override]  # list is invariant: list[str] is no list of django-stubs' field groups
        return ["tenant", "key", "label", "capabilities"] if obj is None else ["tenant", "key", "label", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: CustomRole | None = None) -> tuple[str, ...]:
        # The key is what policies and memberships name: fixed once created.
        return ("tenant", "key", "created_at") if obj else ("created_at",)

    def save_model(self, request: HttpRequest, obj: CustomRole, form: Any, change: bool) -> None:
        actor = operator_actor(request, obj.tenant)
        try:
            if change:
                custom_role_rename(role=obj, label=obj.label, actor=actor)
                return
            created = custom_role_create(tenant=obj.tenant, key=obj.key, label=obj.label,
                                         capabilities=form.cleaned_data.get("capabilities") or [], actor=actor)
        except ValidationFailed as exc:  # the form checked first; a concurrent twin lands here
            raise forms.ValidationError(exc.detail) from exc
        obj.pk, obj._state.adding = created.pk, False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # policies, memberships and decisions name it: keep it
