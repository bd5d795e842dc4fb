"""Retention: remove audit events past their retention, and nothing younger, keeping chains verifiable.

Events are kept for the tenant's retention period (Tenant.audit_retention_days, 7 years by
default) after the case they belong to closes. Audit is a leaf, so the apps that know about
periods and cases register callbacks here at start-up:

- a *period* provider (accounts): how many days a tenant's events are kept;
- *holds* (escalations): the earliest event time that must still be kept for their own reasons,
  e.g. the creation time of the oldest escalation that is open or closed within the period.

Only a prefix of a chain is ever pruned: every event before the first one that is still held.
Events of a long-open case interleave with old ones, so everything from that case's first
event on stays. Pruning writes a signed checkpoint (the last pruned seq and hash) in the same
transaction, and the database lets a DELETE through only for events a checkpoint covers (on
PostgreSQL only through audit_prune_prefix: the application's role may not DELETE audit events).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .actions import AuditAction
from .checkpoints import checkpoint_sign, latest_checkpoint
from .models import AuditCheckpoint, AuditEvent
from .sealing import audit_seal_pending
from .services import PLATFORM_CHAIN, SystemActor, audit_record, lock_chain_head
from .verification import all_chain_keys, verify_events

logger = logging.getLogger(__name__)

# (tenant_id) -> days to keep that tenant's events, or None for "no opinion" (the default applies).
PeriodProvider = Callable[[int], int | None]
# (tenant_id, cutoff) -> earliest created_at that must be kept, or None when nothing is held.
RetentionHold = Callable[[int, datetime], datetime | None]

_period_provider: PeriodProvider | None = None
_holds: dict[str, RetentionHold] = {}
BATCH = 5000


def register_retention_period(provider: PeriodProvider) -> None:
    global _period_provider
    _period_provider = provider


def register_retention_hold(name: str, hold: RetentionHold) -> None:
    """Register (or replace, by name: ready() may run twice) a hold on a tenant's events."""
    _holds[name] = hold


def default_retention_days() -> int:
    return int(getattr(settings, "AUDIT_RETENTION_DAYS", 7 * 365 + 2))


def keep_from(chain_key: str, now: datetime) -> datetime:
    """The earliest instant whose events must be kept on this chain."""
    if chain_key == PLATFORM_CHAIN:
        return now - timedelta(days=default_retention_days())
    tenant_id = int(chain_key.split(":", 1)[1])
    days = (_period_provider(tenant_id) if _period_provider else None) or default_retention_days()
    boundary = cutoff = now - timedelta(days=days)
    for hold in _holds.values():
        held = hold(tenant_id, cutoff)
        if held is not None and held < boundary:
            boundary = held
    return boundary


@dataclass
class PruneResult:
    chain_key: str
    pruned: int = 0
    refused: str = ""


def _prune_batch(chain_key: str, now: datetime) -> tuple[int, str]:
    """Prune at most BATCH events of the chain's expired prefix, in one transaction.

    1. Lock the chain head: writers of this chain and a second retention run wait.
    2. Find the prefix: events before the first one created at or after keep_from().
    3. Verify that prefix hashes onto the current checkpoint: a broken chain is never pruned
       (that would destroy the evidence and sign over it).
    4. Write the signed checkpoint, delete the prefix (the trigger allows exactly that), and
       record the pruning on the chain itself.
    """
    with transaction.atomic():
        lock_chain_head(chain_key)
        checkpoint = latest_checkpoint(chain_key)
        start_seq, start_hash = (checkpoint.seq, checkpoint.hash) if checkpoint else (0, "")
        boundary = keep_from(chain_key, now)
        first_kept = (AuditEvent.objects.filter(chain_key=chain_key, seq__gt=start_seq, created_at__gte=boundary)
                      .order_by("seq").values_list("seq", flat=True).first())
        last_in_chain = (AuditEvent.objects.filter(chain_key=chain_key, seq__gt=start_seq)
                        .order_by("-seq").values_list("seq", flat=True).first() or start_seq)
        end_seq = min(first_kept - 1 if first_kept is not None else last_in_chain, start_seq + BATCH)
        if end_seq <= start_seq:
            return 0, ""
        prefix = AuditEvent.objects.filter(chain_key=chain_key, seq__gt=start_seq, seq__lte=end_seq).order_by("seq")
        report, last_seq, last_hash = verify_events(prefix.iterator(1000), chain_key=chain_key,
                                                    start_seq=start_seq, start_hash=start_hash)
        if not report.ok or last_seq != end_seq:
            return 0, report.describe() if not report.ok else f"events up to seq {end_seq} are missing"
        new = AuditCheckpoint(chain_key=chain_key, seq=end_seq, hash=last_hash, pruned_count=end_seq - start_seq,
                              created_at=now)
        new.signature = checkpoint_sign(new)
        new.save(force_insert=True)
        deleted = _delete_prefix(chain_key, start_seq, end_seq)
        tenant_id = None if chain_key == PLATFORM_CHAIN else int(chain_key.split(":", 1)[1])
        audit_record(tenant_id=tenant_id, action=AuditAction.AUDIT_PRUNED, actor=SystemActor("audit.apply_retention"),
                     target_type="audit_chain", target_id=chain_key,
                     details={"through_seq": end_seq, "through_hash": last_hash, "pruned": deleted,
                              "kept_from": boundary})
        return deleted, ""


def _delete_prefix(chain_key: str, start_seq: int, end_seq: int) -> int:
    """Delete the events a checkpoint now covers. PostgreSQL: through audit_prune_prefix (migration 0007), the one
    DELETE the application's role may make (docs/AUDIT.md, "Least privilege"); SQLite: directly."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT audit_prune_prefix(%s, %s)", [chain_key, end_seq])
            return int(cursor.fetchone()[0])
    deleted, _ = AuditEvent.objects.filter(chain_key=chain_key, seq__gt=start_seq, seq__lte=end_seq).delete()
    return deleted


def retention_apply(*, chain_keys: list[str] | None = None, now: datetime | None = None) -> list[PruneResult]:
    """Prune every chain's expired prefix (batch by batch); report per chain what was pruned or refused.

    Each chain is sealed first (audit.sealing): only sealed events have a place on it, and the prefix is a run of seqs.
    """
    now = now or timezone.now()
    results = []
    for key in chain_keys if chain_keys is not None else all_chain_keys():
        audit_seal_pending(chain_key=key)
        result = PruneResult(key)
        while True:
            pruned, refused = _prune_batch(key, now)
            result.pruned += pruned
            if refused:
                result.refused = refused
                logger.error("audit retention refused to prune %s: %s", key, refused)
            if pruned < BATCH or refused:
                break
        results.append(result)
    return results
