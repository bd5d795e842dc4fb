"""What accounts tells the audit leaf: tenants' retention periods, and every login attempt."""

from __future__ import annotations

import logging
from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest

from audit.actions import AuditAction
from audit.retention import register_retention_period
from audit.services import audit_record

from .models import Membership, Tenant, User

logger = logging.getLogger("trustguard.security")


def tenant_retention_days(tenant_id: int) -> int | None:
    return Tenant.objects.filter(pk=tenant_id).values_list("audit_retention_days", flat=True).first()


def _login_chains(user: User | None) -> list[int | None]:
    """The tenants whose operators should see this person's logins; the platform chain for unknown people."""
    if user is None:
        return [None]
    tenants: list[int | None] = list(Membership.objects.filter(user=user, is_active=True)
                                     .values_list("tenant_id", flat=True).distinct().order_by("tenant_id"))
    return tenants or [None]  # in tenant-id order: two logins lock chains in the same order


class _LoginActor:
    """The person logging in (or the name someone tried)."""

    actor_type = "user"

    def __init__(self, user: User | None, username: str) -> None:
        self.actor_id = str(user.pk) if user else ""
        self.actor_label = user.username if user else username


@receiver(user_logged_in, dispatch_uid="audit_login_succeeded")
def audit_login_succeeded(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    with transaction.atomic():
        for tenant_id in _login_chains(user):
            audit_record(tenant_id=tenant_id, action=AuditAction.LOGIN_SUCCEEDED, actor=_LoginActor(user, user.username),
                         target_type="user", target_id=user.pk)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def audit_login_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None,
                       **kwargs: Any) -> None:
    # Django has already masked the password in `credentials`; only the name is kept.
    username = str(credentials.get("username") or "").replace("\x00", "")[:150]  # NUL: PostgreSQL refuses it
    user = User.objects.filter(username=username).first() if username else None
    logger.warning("login failed for %s (%s)", username or "-", "known user" if user else "unknown user")
    with transaction.atomic():
        for tenant_id in _login_chains(user):
            audit_record(tenant_id=tenant_id, action=AuditAction.LOGIN_FAILED, actor=_LoginActor(user, username),
                         target_type="user", target_id=user.pk if user else "", details={"username": username})


@receiver(user_locked_out, dispatch_uid="audit_login_locked_out")
def audit_login_locked_out(sender: Any, request: HttpRequest | None = None, username: str | None = None,
                           **kwargs: Any) -> None:
    """django-axes locked a name out after too many failures: worth its own line in the trail."""
    name = str(username or "").replace("\x00", "")[:150]
    user = User.objects.filter(username=name).first() if name else None
    with transaction.atomic():
        for tenant_id in _login_chains(user):
            audit_record(tenant_id=tenant_id, action=AuditAction.LOGIN_LOCKED_OUT, actor=_LoginActor(user, name),
                         target_type="user", target_id=user.pk if user else "", details={"username": name})


register_retention_period(tenant_retention_days)
