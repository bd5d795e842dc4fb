"""Reads: the in-app inbox, webhook endpoints, dead letters."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from trustguard.errors import NotFound

from .models import Channel, Delivery, DeliveryStatus, Message, WebhookEndpoint


def uuid_or_404(value: object, what: str) -> uuid.UUID:
    """Ids are opaque strings to clients; a malformed one is simply not found (never a 500)."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"no such {what}") from None


def inbox(*, user_id: int, tenant_id: int, unread_only: bool = False) -> QuerySet[Message]:
    qs = Message.objects.filter(user_id=user_id, tenant_id=tenant_id, channel=Channel.IN_APP)
    if unread_only:
        # Done (its case closed) needs no attention any more, read or not.
        qs = qs.filter(read_at__isnull=True, done_at__isnull=True)
    return qs.order_by("-created_at", "-id")


def inbox_unread_count(*, user_id: int, tenant_id: int) -> int:
    return inbox(user_id=user_id, tenant_id=tenant_id, unread_only=True).count()


def webhook_endpoints(*, tenant_id: int) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(tenant_id=tenant_id, is_active=True).order_by("created_at")


def webhook_endpoints_all() -> QuerySet[WebhookEndpoint]:
    """Every active endpoint of every tenant (the operators' home asks each one's circuit breaker)."""
    return WebhookEndpoint.objects.filter(is_active=True).select_related("tenant").order_by("tenant_id", "created_at")


def webhook_endpoint_get(*, tenant_id: int, endpoint_id: object) -> WebhookEndpoint:
    endpoint = webhook_endpoints(tenant_id=tenant_id).filter(pk=uuid_or_404(endpoint_id, "webhook endpoint")).first()
    if endpoint is None:
        raise NotFound("no such webhook endpoint")
    return endpoint


def dead_letters(*, tenant_id: int | None = None) -> QuerySet[Delivery]:
    qs = Delivery.objects.filter(status=DeliveryStatus.DEAD)
    return qs.filter(tenant_id=tenant_id) if tenant_id is not None else qs
