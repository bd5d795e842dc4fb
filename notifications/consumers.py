"""Internal events the notifications side acts on itself (outbox.catalogue.INTERNAL): the relay calls the consumer
of each such event it claims, in its transaction (a savepoint each: a failing consumer loses only its own work).

The domain tells; this decides what people are sent. accounts writes stepup.code_replayed instead of calling
message_send, so accounts never imports the messages it causes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .outbox.catalogue import STEPUP_CODE_REPLAYED

if TYPE_CHECKING:
    from .models import OutboxEvent


def _warn_of_replay(event: OutboxEvent) -> None:
    """A reused code may mean someone saw it: tell its owner, in the app and by email."""
    from django.contrib.auth import get_user_model

    from .messages import message_send

    data = event.data
    user = get_user_model().objects.filter(pk=data["user_id"]).first()
    if user is None:
        return
    body = (f"Someone just tried to reuse a one-time code of yours on {data['subject_type']} {data['subject_id']}. "
            "It was refused. If that was not you, change your password and tell your security team.")
    for channel in ("in_app", "email"):
        if channel == "email" and not user.email:
            continue
        message_send(tenant_id=event.tenant_id, channel=channel, subject="A one-time code of yours was reused",
                     body=body, purpose="security_alert", to_user_id=user.pk)


_CONSUMERS: dict[str, Callable[[OutboxEvent], None]] = {STEPUP_CODE_REPLAYED.type: _warn_of_replay}


def consumer_for(event_type: str) -> Callable[[OutboxEvent], None] | None:
    return _CONSUMERS.get(event_type)
