"""What every accounts admin shares: history without revert, the operator as actor, an audited save."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.forms.models import model_to_dict
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from audit.actions import AuditAction
from audit.services import audit_record

from ..actors import Actor
from ..models import Tenant


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
