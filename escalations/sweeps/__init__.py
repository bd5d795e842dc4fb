"""The deadline sweeps: deferral wake-up, expiry, re-escalation up the ladder, reminders.

Deadlines are columns (ack_due_at, expires_at, defer_until), never Celery ETAs. Beat runs
sweep_deadlines() every TRUSTGUARD_SWEEP_INTERVAL seconds (job "escalations.sweep_deadlines");
`manage.py run_sweeps` runs it once by hand.

Concurrency policy: each pass works in chunks, one transaction per chunk. A chunk claims its
rows with SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL; a no-op on SQLite, whose writers are
serialised anyway), so two sweeps at once (two beats, beat plus run_sweeps, or a sweep's own two
workers: chunks.py) never claim the same escalation, and a person deciding right now (who holds
the row lock) is simply skipped until the next sweep. Every transition leaves the pass's WHERE
clause (status, deadline, reminder_sent_at or top_alerted_at change), so a row is acted on once;
the state and deadline are re-checked on the locked row, as a human action does. Rows are written
in bulk per chunk, but each changed escalation still gets its own outbox event and its own audit
event, in the same transaction.

Pass order matters: wake-ups first (they move expires_at), then expiry (an expired case is not
re-escalated), then re-escalation, then reminders (a case just re-escalated has a fresh window).

Layout: chunks.py (claim, the chunk's recorder, the pipelined loop), passes.py (what each pass
claims and does), this module (the job and the one-case entry point).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime

from .chunks import CHUNK_SIZE, Chunk, SweepResult, claim, run_pass
from .passes import PASSES

__all__ = ["CHUNK_SIZE", "PASSES", "SweepResult", "deadlines_apply_one", "sweep_deadlines"]

log = logging.getLogger(__name__)


def sweep_deadlines(*, now: datetime | None = None, chunk_size: int = CHUNK_SIZE, only: Iterable[str] = (),
                    pipeline: bool = True) -> SweepResult:
    """Run every deadline pass once, in order; safe to run concurrently with itself.

    `pipeline=False` keeps to one chunk in flight (one connection), e.g. to measure what the overlap buys.
    """
    total = SweepResult()
    only = set(only)
    for p in PASSES:
        if only and p.name not in only:
            continue
        done = run_pass(p.due, p.order, p.act, now=now, chunk_size=chunk_size, pipeline=pipeline)
        if done.total:
            log.info("sweep %s: %s", p.name, done.summary())
        total += done
    return total


def deadlines_apply_one(escalation_id: uuid.UUID, now: datetime) -> SweepResult:
    """The deferral wake-up and expiry passes for one escalation, in the caller's transaction.

    A decision or acknowledgement that arrives after the case's deadline, before beat's sweep got to it,
    moves the case to its outcome through this very code (the sweep's own transitions, events and audit),
    so the outcome never depends on when the sweep last ran. The caller holds the row's lock.
    """
    total = SweepResult()
    for p in PASSES[:3]:  # deferral, expiry, then a lapsed approval: the order of sweep_deadlines
        chunk = Chunk(now)
        total += p.act(claim(p.due(now).filter(pk=escalation_id), p.order, 1), chunk)
        chunk.flush()
    return total
