"""Sealing: putting the events that requests wrote unsealed onto their chain, in batches, one sealer per chain.

Writers (audit.services) insert events with no seq and their own seal (an HMAC of the event alone), taking no lock,
so one tenant's requests never queue for its audit chain. The sealer then, chain by chain (docs/AUDIT.md, "Sealing"):

1. locks the chain head: only the sealer (and retention, and the keyed seal after migrate) takes that lock, never a
   request, and two sealers of one chain take turns;
2. reads up to a batch of the chain's unsealed events in id order. The queue is "seq IS NULL", not "id above the
   last one sealed": an event whose transaction commits after a later id was sealed is still unsealed, so the next
   batch finds it; nothing is skipped, and no horizon (xmin) is needed. (Under READ COMMITTED each statement sees
   only committed rows, on SQLite every writer is serialised: the same code on both engines.) The chain's order is
   the sealer's: id order among the events committed when it reads, close to commit order;
3. checks each event's own seal. An event altered or forged while unsealed (its seal fails) is not chained: the
   chain stops before it, the lag grows, /healthz warns and verify_audit names the event;
4. gives each the next seq and its chain hash under the newest audit key (audit.hashing, the one hasher), in one
   UPDATE, which the database lets through once per event (the trigger in audit.models), and moves the head.

`audit_seal_pending()` is the one way to seal now: the beat job `audit.seal_pending` (every
AUDIT_SEAL_INTERVAL_SECONDS), `manage.py audit_seal`, verify_audit before it verifies, and tests that inspect a
chain right after an action.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Count, Min
from django.utils import timezone

from trustguard.jsonutil import canonical_json

from .hashing import compute_hash
from .keys import sealing_key_id, sealing_mac
from .models import AuditChainHead, AuditEvent
from .services import RecordedEvent, lock_chain_head

logger = logging.getLogger("trustguard.audit")

BATCH = 2000


@dataclass
class SealResult:
    sealed: int = 0
    chains: int = 0
    refused: list[str] = field(default_factory=list)  # "<chain>: <problem>", the chains that stopped at a bad event

    def describe(self) -> str:
        text = f"sealed {self.sealed} events on {self.chains} chains"
        return text + (f"; REFUSED: {'; '.join(self.refused)}" if self.refused else "")


def own_seal_problem(event: Any, *, encoded: tuple[str, str, str] | None = None) -> str:
    """Why an unsealed event's own seal does not hold (empty when it does): it was altered or forged unsealed."""
    if not event.key_id or event.prev_hash:
        return (f"forged: the unsealed {event.action} event has no seal of its own under the audit key (a row "
                "inserted or rewritten by someone without the key)")
    expected = compute_hash("", event, encoded=encoded)
    if expected is None:
        return (f"the unsealed {event.action} event is sealed with audit key {event.key_id!r}, which "
                "TRUSTGUARD_AUDIT_KEY does not hold: it cannot be checked (a retired key left out of the ring, or a "
                "forged row)")
    if not hmac.compare_digest(expected.encode(), event.hash.encode()):
        return (f"hash mismatch: the unsealed {event.action} event was altered or forged before it was sealed (its "
                "hash is not its own seal under the audit key)")
    return ""


def _unsealed(chain_key: str, limit: int) -> list[RecordedEvent]:
    """The chain's oldest unsealed events, as the writer described them (what their seal and chain hash cover)."""
    rows = (AuditEvent.objects.filter(chain_key=chain_key, seq__isnull=True).order_by("id")
            .values_list(*RecordedEvent._fields)[:limit])
    return [RecordedEvent._make(row) for row in rows]


def _write_seals(seals: list[tuple[int, int, str, str, str]]) -> None:
    """(id, seq, prev_hash, hash, key_id) of each event: one UPDATE on PostgreSQL, one statement a row on SQLite."""
    connection = connections[router.db_for_write(AuditEvent)]
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS e SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash, key_id = v.key_id "  # noqa: S608
                "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[]) "
                "AS v (id, seq, prev_hash, hash, key_id) WHERE e.id = v.id",
                [list(column) for column in zip(*seals, strict=True)])
        else:
            cursor.executemany(f"UPDATE {table} SET seq = %s, prev_hash = %s, hash = %s, key_id = %s WHERE id = %s",  # noqa: S608
                               [(seq, prev, digest, key, id_) for id_, seq, prev, digest, key in seals])


def chain_seal_batch(chain_key: str, *, batch: int = BATCH) -> tuple[int, str]:
    """Seal up to `batch` of the chain's unsealed events, in one transaction; returns (sealed, problem).

    `problem`: why the chain stopped at an event whose own seal fails (the events before it are sealed).
    """
    with transaction.atomic():
        head = lock_chain_head(chain_key)
        events = _unsealed(chain_key, batch)
        if not events:
            return 0, ""
        key_id = sealing_key_id()
        mac = sealing_mac(key_id)
        seq, prev_hash, problem = head.last_seq, head.last_hash, ""
        seals: list[tuple[int, int, str, str, str]] = []
        for event in events:
            encoded = (canonical_json(event.before), canonical_json(event.after), canonical_json(event.details))
            problem = own_seal_problem(event, encoded=encoded)
            if problem:
                problem = f"event id={event.id}: {problem}"
                logger.error("audit sealing stopped on %s: %s", chain_key, problem)
                break
            chained = event._replace(seq=seq + 1, key_id=key_id, prev_hash=prev_hash)
            digest = compute_hash(prev_hash, chained, encoded=encoded, mac=mac)
            assert digest is not None  # the ring's newest key, which the ring holds
            seals.append((event.id, seq + 1, prev_hash, digest, key_id))
            seq, prev_hash = seq + 1, digest
        if seals:
            _write_seals(seals)
            AuditChainHead.objects.filter(chain_key=chain_key).update(last_seq=seq, last_hash=prev_hash)
        return len(seals), problem


def pending_chain_keys() -> list[str]:
    """The chains with unsealed events (read through the sealer's partial index)."""
    return list(AuditEvent.objects.filter(seq__isnull=True).order_by("chain_key")
                .values_list("chain_key", flat=True).distinct())


def audit_seal_pending(*, chain_key: str | None = None, batch: int = BATCH) -> SealResult:
    """Seal every committed unsealed event (of `chain_key`, or of every chain), batch after batch, each batch in its
    own transaction (a savepoint inside the caller's): the head lock is held for one batch at a time.

    Inside a transaction it also seals what that transaction wrote (tests, the anchor, the keyed seal after migrate).
    """
    result = SealResult()
    for key in [chain_key] if chain_key else pending_chain_keys():
        sealed_here = 0
        while True:
            sealed, problem = chain_seal_batch(key, batch=batch)
            sealed_here += sealed
            if problem:
                result.refused.append(f"{key}: {problem}")
                break
            if sealed < batch:
                break
        result.sealed += sealed_here
        result.chains += 1 if sealed_here else 0
    return result


def sealing_lag(*, now: datetime | None = None) -> dict[str, Any]:
    """The sealer's backlog: unsealed events and the age of the oldest (0 when none), for /healthz and the metric."""
    figures = AuditEvent.objects.filter(seq__isnull=True).aggregate(unsealed=Count("id"), oldest=Min("created_at"))
    oldest = figures["oldest"]
    age = max(0.0, ((now or timezone.now()) - oldest).total_seconds()) if oldest else 0.0
    return {"unsealed": figures["unsealed"], "oldest_age_seconds": round(age, 3),
            "warn_above_seconds": float(getattr(settings, "AUDIT_SEAL_LAG_WARN_SECONDS", 60))}
