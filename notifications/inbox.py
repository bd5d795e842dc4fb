"""The in-app inbox: read marks, "done" when a case closes, and a person's channel preferences."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from trustguard.errors import NotFound, ValidationFailed
from trustguard.locks import for_update

from .models import Channel, ChannelPreference, Message, OutboxEvent
from .registry import closes_aggregate
from .selectors import uuid_or_404


def notification_mark_read(*, user_id: int, tenant_id: int, message_id: object) -> Message:
    with transaction.atomic():
        message = for_update(Message.objects.filter(
            pk=uuid_or_404(message_id, "notification"), user_id=user_id, tenant_id=tenant_id,
            channel=Channel.IN_APP)).first()
        if message is None:
            raise NotFound("no such notification")
        if message.read_at is None:
            message.read_at = timezone.now()
            message.save(update_fields=["read_at"])
    return message


def notifications_mark_all_read(*, user_id: int, tenant_id: int) -> int:
    """Mark every unread inbox item of the person in this tenant read; return how many there were."""
    return Message.objects.filter(user_id=user_id, tenant_id=tenant_id, channel=Channel.IN_APP,
                                  read_at__isnull=True).update(read_at=timezone.now())


def channel_preference_set(*, user_id: int, channel: str, enabled: bool) -> ChannelPreference:
    if channel not in Channel.values:
        raise ValidationFailed(f"unknown channel {channel!r}", errors={"channel": ["Choose email, sms, in_app or push."]})
    preference, _ = ChannelPreference.objects.update_or_create(user_id=user_id, channel=channel,
                                                               defaults={"enabled": enabled})
    return preference


def inbox_items_done(events: Sequence[OutboxEvent], now: datetime) -> int:
    """Mark done, for everyone, the inbox items that asked for action about an aggregate these events close
    (a decided, cancelled or expired case no longer "needs your decision"). After the batch's own messages:
    an item written in the same batch, before the closing event, is covered too."""
    closing = [e for e in events if closes_aggregate(e)]
    if not closing:
        return 0
    aggregates: dict[str, set[str]] = {}
    for event in closing:
        aggregates.setdefault(event.aggregate_type, set()).add(event.aggregate_id)
    about = Q()
    for aggregate_type, ids in aggregates.items():
        about |= Q(event__aggregate_type=aggregate_type, event__aggregate_id__in=ids)
    # Through the events' aggregate (outbox_aggregate_idx), then the messages of those events (their FK index).
    return (Message.objects.filter(about, tenant_id__in={e.tenant_id for e in closing}, channel=Channel.IN_APP,
                                   done_at__isnull=True)
            .filter(data__has_key="action").update(done_at=now))
