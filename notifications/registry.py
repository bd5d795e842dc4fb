"""Who is told about an event: resolvers registered by higher apps (notifications imports none of them).

escalations registers its resolver in EscalationsConfig.ready():
    register_recipient_resolver("escalation", escalation_recipients, many=escalation_recipients_many)
A resolver gets the OutboxEvent and returns the recipients; the relay renders and queues the messages.
The optional `many` resolver answers for a whole relay batch at once ({event pk: recipients}), so the
relay's queries do not grow with the batch; it must give the same answer as the single one per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
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
    # Stored on in-app messages: links ({"escalation": id}), and "action" when the item asks for one (done at close).
    data: Mapping[str, Any] = field(default_factory=dict)
    # Critical: goes through the person's quiet hours when they let critical messages through (preferences.py).
    critical: bool = False
    # The language the message is written in (a settings.LANGUAGES code); blank: the site's.
    language: str = ""
    # The time zone its times are shown in and its quiet hours read in (an IANA name); blank: the site's.
    time_zone: str = ""


RecipientResolver = Callable[["OutboxEvent"], Iterable[Recipient]]
ManyRecipientResolver = Callable[[Sequence["OutboxEvent"]], Mapping[int, Iterable[Recipient]]]
ClosesAggregate = Callable[["OutboxEvent"], bool]
_RESOLVERS: dict[str, RecipientResolver] = {}
_MANY_RESOLVERS: dict[str, ManyRecipientResolver] = {}
_CLOSES: dict[str, ClosesAggregate] = {}


def register_recipient_resolver(aggregate_type: str, func: RecipientResolver, *,
                                many: ManyRecipientResolver | None = None,
                                closes: ClosesAggregate | None = None) -> None:
    """`closes(event)` says the event closes its aggregate: the inbox items that asked for action about it
    (Recipient.data["action"]) are then marked done, for everyone."""
    _RESOLVERS[aggregate_type] = func
    _MANY_RESOLVERS.pop(aggregate_type, None)
    _CLOSES.pop(aggregate_type, None)
    if many is not None:
        _MANY_RESOLVERS[aggregate_type] = many
    if closes is not None:
        _CLOSES[aggregate_type] = closes


def closes_aggregate(event: OutboxEvent) -> bool:
    closes = _CLOSES.get(event.aggregate_type)
    return bool(closes and closes(event))


def recipients_for(event: OutboxEvent) -> list[Recipient]:
    resolver = _RESOLVERS.get(event.aggregate_type)
    return list(resolver(event)) if resolver else []


def recipients_for_many(events: Sequence[OutboxEvent]) -> dict[int, list[Recipient]]:
    """{event pk: recipients} for a batch: one call per aggregate type (its `many` resolver when it has
    one, else the single resolver per event). An exception propagates: the caller falls back per event."""
    by_type: dict[str, list[OutboxEvent]] = {}
    for event in events:
        by_type.setdefault(event.aggregate_type, []).append(event)
    out: dict[int, list[Recipient]] = {}
    for aggregate_type, group in by_type.items():
        many = _MANY_RESOLVERS.get(aggregate_type)
        if many is not None:
            answered = many(group)
            for event in group:
                out[event.pk] = list(answered.get(event.pk, ()))
        else:
            for event in group:
                out[event.pk] = recipients_for(event)
    return out
