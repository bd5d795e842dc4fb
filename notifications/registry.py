"""Who is told about an event: resolvers registered by higher apps (notifications imports none of them).

escalations registers its resolver in EscalationsConfig.ready():
    register_recipient_resolver("escalation", escalation_recipients)
A resolver gets the OutboxEvent and returns the recipients; the relay renders and queues the messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import OutboxEvent


@dataclass(frozen=True)
class Recipient:
    """One person (or address) to tell, on which channels, with what template context."""

    audience: str  # template folder: approver, requester, customer, ...
    channels: tuple[str, ...]
    user_id: int | None = None
    email: str = ""
    phone: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)  # stored on in-app messages (links)


RecipientResolver = Callable[["OutboxEvent"], Iterable[Recipient]]
_RESOLVERS: dict[str, RecipientResolver] = {}


def register_recipient_resolver(aggregate_type: str, func: RecipientResolver) -> None:
    _RESOLVERS[aggregate_type] = func


def recipients_for(event: OutboxEvent) -> list[Recipient]:
    resolver = _RESOLVERS.get(event.aggregate_type)
    return list(resolver(event)) if resolver else []
