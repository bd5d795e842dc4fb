"""Webhook endpoints: registration (SSRF-checked, filtered by catalogued event types), signing secrets
(stored encrypted; a rotation keeps the old one signing for ROTATION_GRACE) and removal. Audited."""

from __future__ import annotations

import base64
import logging
import secrets as _secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import AuditActor, audit_record
from trustguard.crypto import SecretUnreadable, decrypt, encrypt
from trustguard.errors import NotFound, ValidationFailed
from trustguard.locks import for_update

from ..models import WebhookEndpoint
from ..outbox import catalogue
from ..outbox.catalogue import subscribable
from ..selectors import uuid_or_404
from ..ssrf import TargetRefused, resolve_target

logger = logging.getLogger(__name__)
SECRET_PREFIX = "whsec_"
# After a rotation the previous secret keeps signing this long (receivers switch without loss).
ROTATION_GRACE = timedelta(hours=24)
MAX_EVENT_TYPES = 50


def new_webhook_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode()


def endpoint_signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    keys = [decrypt(endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and endpoint.previous_secret_expires_at \
            and endpoint.previous_secret_expires_at > timezone.now():
        try:
            keys.append(decrypt(endpoint.previous_secret_encrypted))
        except SecretUnreadable:
            # Rotated away from a secret stored under a key that is lost (docs/BACKUP.md): the new one signs alone.
            logger.warning("webhook endpoint %s: its previous secret is unreadable; signing with the new one only",
                           endpoint.pk)
    return keys


def _validate_event_types(event_types: Any) -> list[str]:
    """A list of catalogued event types, or prefixes of them with ".*" (notifications.outbox.catalogue)."""
    if event_types is None:
        return []
    if not isinstance(event_types, list) or len(event_types) > MAX_EVENT_TYPES or not all(
            isinstance(t, str) and len(t) <= 64 and subscribable(t) for t in event_types):
        example = f"{catalogue.ESCALATION_APPROVED.type}, {catalogue.ESCALATION_APPROVED.aggregate_type}.*"
        raise ValidationFailed(f"event_types must be a list of event types such as {example.replace(', ', ' or ')}",
                               errors={"event_types": [f"A list of event types (e.g. {example})."]})
    return sorted(set(event_types))


def webhook_endpoint_create(*, tenant_id: int, actor: AuditActor, url: str, event_types: list[str] | None = None,
                            description: str = "") -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; return it with its signing secret (shown this once, stored encrypted)."""
    types = _validate_event_types(event_types)
    try:
        resolve_target(url)
    except TargetRefused as exc:
        raise ValidationFailed(f"url refused: {exc}", slug="webhook-target-refused", errors={"url": [str(exc)]}) from None
    secret = new_webhook_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            tenant_id=tenant_id, url=url, event_types=types, description=description[:200],
            secret_encrypted=encrypt(secret), secret_prefix=secret[:12])
        audit_record(tenant_id=tenant_id, action=AuditAction.WEBHOOK_CREATED, actor=actor, target_type="webhook_endpoint",
                     target_id=endpoint.pk, after={"url": url, "event_types": types})
    return endpoint, secret


def _locked_endpoint(tenant_id: int, endpoint_id: object) -> WebhookEndpoint:
    endpoint = for_update(WebhookEndpoint.objects.filter(
        pk=uuid_or_404(endpoint_id, "webhook endpoint"), tenant_id=tenant_id, is_active=True)).first()
    if endpoint is None:
        raise NotFound("no such webhook endpoint")
    return endpoint


def webhook_endpoint_rotate_secret(*, tenant_id: int, actor: AuditActor, endpoint_id: object) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one keeps signing (as a second signature) for ROTATION_GRACE."""
    secret = new_webhook_secret()
    with transaction.atomic():
        endpoint = _locked_endpoint(tenant_id, endpoint_id)
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = timezone.now() + ROTATION_GRACE
        endpoint.secret_encrypted, endpoint.secret_prefix = encrypt(secret), secret[:12]
        # The history row says the secret changed (its prefix shows which one is current); the secret columns
        # themselves are excluded from history, so no copy of either secret lands there, encrypted or not.
        endpoint._change_reason = "signing secret rotated"  # type: ignore[attr-defined]  # simple-history's change reason
        endpoint.save()
        audit_record(tenant_id=tenant_id, action=AuditAction.WEBHOOK_SECRET_ROTATED, actor=actor,
                     target_type="webhook_endpoint", target_id=endpoint.pk)
    return endpoint, secret


def webhook_endpoint_delete(*, tenant_id: int, actor: AuditActor, endpoint_id: object) -> None:
    """Deactivate (deliveries keep their history); pending deliveries to it are dead-lettered when due."""
    with transaction.atomic():
        endpoint = _locked_endpoint(tenant_id, endpoint_id)
        endpoint.is_active, endpoint.deleted_at = False, timezone.now()
        endpoint.save(update_fields=["is_active", "deleted_at"])
        audit_record(tenant_id=tenant_id, action=AuditAction.WEBHOOK_DELETED, actor=actor, target_type="webhook_endpoint",
                     target_id=endpoint.pk, before={"url": endpoint.url, "event_types": endpoint.event_types})
