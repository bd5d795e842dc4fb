"""Thin Celery tasks: ids in, one service call. Retries are data (next_attempt_at + the beat sweep),
not Celery ETAs, so a lost task or a dead worker loses nothing."""

from __future__ import annotations

from celery import shared_task

from .deliveries.attempts import deliveries_attempt, delivery_attempt
from .outbox.emit import kick_relay, kick_taken
from .relay import outbox_relay_step


@shared_task(name="notifications.relay", ignore_result=True, acks_late=True)
def relay() -> int:
    kick_taken()  # before claiming: an event committed from now on kicks again (outbox.emit.kick_relay)
    relayed, more = outbox_relay_step()
    if more:
        # A backlog (a sweep's burst): go on in a fresh task rather than wait for the beat sweep,
        # keeping each task short.
        kick_relay()
    return relayed


@shared_task(name="notifications.deliver", ignore_result=True, acks_late=True)
def deliver(delivery_id: int) -> str:
    return delivery_attempt(delivery_id=int(delivery_id))


@shared_task(name="notifications.deliver_many", ignore_result=True, acks_late=True)
def deliver_many(delivery_ids: list[int]) -> dict[str, int]:
    return deliveries_attempt(delivery_ids=[int(i) for i in delivery_ids])
