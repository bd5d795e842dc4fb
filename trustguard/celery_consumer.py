"""The worker's consumer, made to survive a broker that goes away (settings.CELERY_WORKER_CONSUMER).

Celery 5.7 on Redis: when the broker connection drops, the consumer collects the connection and then closes it;
closing restores the unacknowledged messages (acks_late keeps some) through a Redis client that the collect just
took away, and the AttributeError that follows is not a connection error, so the worker exits ("Unrecoverable
error") instead of reconnecting. Every worker died at the first broker outage of the multi-node test. Here that
one error is logged and the consumer goes on to reconnect as it does for any connection loss; the messages it
could not restore come back by the transport's own visibility timeout (and the work is in the database anyway).
"""

from __future__ import annotations

import logging

from celery.worker.consumer import Consumer as CeleryConsumer

logger = logging.getLogger(__name__)


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc: Exception) -> None:
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError:
            self.connection = None
            logger.warning("broker connection lost; could not hand unacknowledged messages back (they return after "
                           "the visibility timeout); reconnecting", exc_info=True)
