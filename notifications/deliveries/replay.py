"""Replaying a dead letter: an operator gives it a fresh set of attempts. Audited."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import AuditActor, audit_record
from trustguard.errors import Conflict, NotFound
from trustguard.locks import for_update

from ..models import Delivery, DeliveryStatus
from .queue import kick_deliveries


def delivery_replay(*, delivery_id: int, actor: AuditActor, tenant_id: int | None = None) -> Delivery:
    """Give a dead letter a fresh set of attempts, now. Audited."""
    with transaction.atomic():
        filters = Q(pk=delivery_id) & (Q(tenant_id=tenant_id) if tenant_id is not None else Q())
        delivery = for_update(Delivery.objects.filter(filters)).first()
        if delivery is None:
            raise NotFound("no such delivery")
        if delivery.status != DeliveryStatus.DEAD:
            raise Conflict(f"only a dead letter can be replayed (this one is {delivery.status})", slug="not-dead")
        message = delivery.message
        if message is not None and message.sensitive and not message.body:
            raise Conflict("a one-time code is not kept after its last attempt; request a new one",
                           slug="sensitive-discarded")
        delivery.status, delivery.attempts, delivery.dead_at = DeliveryStatus.PENDING, 0, None
        delivery.next_attempt_at, delivery.replays = timezone.now(), delivery.replays + 1
        delivery.save()
        audit_record(tenant_id=delivery.tenant_id, action=AuditAction.DELIVERY_REPLAYED, actor=actor, target_type="delivery",
                     target_id=delivery.pk, details={"kind": delivery.kind, "replays": delivery.replays,
                                                     "last_error": delivery.last_error[:500]})
        transaction.on_commit(lambda: kick_deliveries([delivery.pk]))
    return delivery
