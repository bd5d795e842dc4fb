"""kombu's Redis transport, made to survive a broker that goes away (installed for redis:// and rediss:// by
trustguard/celery.py).

kombu 5.7 / Celery 5.7: when the broker connection drops, the worker's consumer collects the connection, which
detaches its channels from it. Two things then still use such a channel: closing it restores the unacknowledged
messages (acks_late keeps some), and a task that finishes afterwards acknowledges its message. Both ask the detached
channel for a new Redis client, and building one fails with AttributeError ('NoneType' object has no attribute
'hostname'), which is not a connection error: the worker exits ("Unrecoverable error") instead of reconnecting.
Every worker of the multi-node test died at the first broker outage, twice over. Here a detached channel raises
Redis' own ConnectionError instead, which the consumer treats as what it is (a lost connection: reconnect) and
which kombu ignores while closing. A message whose acknowledgement was lost this way comes back after the
visibility timeout and runs again: every task is idempotent, and the work is in the database anyway.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection was closed (Redis went away)")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]  # kombu's, unannotated


class Transport(kombu_redis.Transport):
    Channel = Channel
