"""Thin Celery tasks: ids in, one service call. Retries are data (next_attempt_at + the beat sweep),
not Celery ETAs, so a lost task or a dead worker loses nothing."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="notifications.relay", ignore_result=True, acks_late=True)
def relay() -> int:
    return services.outbox_relay()


@shared_task(name="notifications.deliver", ignore_result=True, acks_late=True)
def deliver(delivery_id: int) -> str:
    return services.delivery_attempt(delivery_id=int(delivery_id))
