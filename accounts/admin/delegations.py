"""Out of office: delegations, revoked through the service."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext, gettext_lazy, ngettext

from ..delegations import delegation_revoke
from ..models import Delegation
from .base import operator_actor


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

    @admin.display(description=gettext_lazy("types"))
    def types(self, obj: Delegation) -> str:
        return ", ".join(obj.escalation_types) or gettext("every type")

    @admin.display(description=gettext_lazy("status"))
    def status(self, obj: Delegation) -> str:
        from django.utils import timezone

        return obj.status_at(timezone.now())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # set by the person (or an operator) through the away page or POST /delegations: one path

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # ended, never deleted: the audit trail and decisions refer to it

    @admin.action(description=gettext_lazy("End the selected delegations now"))
    def end_now(self, request: HttpRequest, queryset: QuerySet[Delegation]) -> None:
        from django.utils import timezone

        done = 0
        for delegation in queryset.select_related("tenant"):
            if delegation.status_at(timezone.now()) not in (Delegation.Status.ACTIVE, Delegation.Status.SCHEDULED):
                continue
            delegation_revoke(actor=operator_actor(request, delegation.tenant), delegation_id=delegation.pk)
            done += 1
        self.message_user(request, ngettext("Ended %(count)d delegation.", "Ended %(count)d delegations.", done)
                          % {"count": done}, messages.SUCCESS)
