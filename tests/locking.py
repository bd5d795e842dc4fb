"""A row lock held by another database connection, as a request or worker in progress holds it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def held_elsewhere(take_lock: Callable[[], object], *, wait: float = 30) -> Iterator[None]:
    """Run `take_lock` in a transaction on another connection and keep that transaction open inside the block."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                take_lock()
                held.set()
                release.wait(wait)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(wait), "the other connection never took the lock"
        yield
    finally:
        release.set()
        holder.join(wait)
