"""Verifying hash chains: every event is sealed onto its predecessor, from the checkpoint to the head.

What the database alone can show. Anchors kept outside it (audit.anchors) show what it no longer holds.

Events not sealed yet (audit.sealing) are not on the chain: they are counted as *pending*, never as broken, and
each one's own seal is checked, so one altered or forged before sealing is reported like a broken event.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from .actions import AuditAction
from .checkpoints import checkpoint_signature_valid, latest_checkpoint
from .hashing import compute_hash
from .models import AuditChainHead, AuditEvent
from .sealing import own_seal_problem
from .services import PLATFORM_CHAIN

ANCHOR_ACTION = AuditAction.AUDIT_CHAINS_ANCHORED

CHUNK = 2000


@dataclass(frozen=True)
class ChainReport:
    chain_key: str
    events: int
    ok: bool
    problem: str = ""
    event_id: int | None = None
    seq: int | None = None
    pending: int = 0  # events not sealed yet, each with a valid seal of its own

    def describe(self) -> str:
        if self.ok:
            return f"OK {self.chain_key}: {self.events} events" + (f", {self.pending} pending sealing"
                                                                   if self.pending else "")
        where = (f"event id={self.event_id} " + ("(unsealed)" if self.seq is None else f"seq={self.seq}")
                 if self.event_id is not None else f"seq={self.seq}")
        return f"BROKEN {self.chain_key}: first broken event {where}: {self.problem}"


def _seal_problem(event: AuditEvent, keyed_before: bool) -> str:
    """Why the event's hash is not the one its key gives (empty when it is)."""
    if not event.key_id and keyed_before:
        return (f"forged: the {event.action} event is not sealed with the audit key, after events that are "
                "(a row inserted or rewritten by someone without the key)")
    expected = compute_hash(event.prev_hash, event)
    if expected is None:
        return (f"sealed with audit key {event.key_id!r}, which TRUSTGUARD_AUDIT_KEY does not hold: it cannot be "
                "verified (a retired key left out of the ring, or a forged row)")
    if not hmac.compare_digest(expected.encode(), event.hash.encode()):  # bytes: a forged hash may be any text
        return (f"hash mismatch: the {event.action} event was altered or forged after it was written (its hash is "
                "not its seal under the audit key)")
    return ""


def verify_events(events: Iterable[AuditEvent], *, chain_key: str, start_seq: int, start_hash: str,
                  ) -> tuple[ChainReport, int, str]:
    """Walk `events` (in seq order) from (start_seq, start_hash); return the report and where it ended.

    Events written before the chain was keyed (no key_id, plain SHA-256) are accepted only before the first keyed
    one; verify_chain also wants the last event keyed, so that a keyed seal pins every unkeyed event before it.
    """
    expected_seq, prev_hash, count, keyed = start_seq + 1, start_hash, 0, False
    for event in events:
        problem = ""
        seq = event.seq if event.seq is not None else -1  # the walk reads sealed events (seq > start) only
        if seq != expected_seq:
            problem = (f"seq {seq} where {expected_seq} was expected: events "
                       f"{expected_seq}..{seq - 1} are missing" if seq > expected_seq
                       else f"seq {seq} out of order (expected {expected_seq})")
        elif event.prev_hash != prev_hash:
            problem = "prev_hash does not match the previous event's hash (an event was removed or reordered)"
        else:
            problem = _seal_problem(event, keyed)
        if problem:
            return ChainReport(chain_key, count, False, problem, event.pk, seq), expected_seq - 1, prev_hash
        count += 1
        keyed = keyed or bool(event.key_id)
        expected_seq, prev_hash = seq + 1, event.hash
    return ChainReport(chain_key, count, True), expected_seq - 1, prev_hash


def verify_chain(chain_key: str) -> ChainReport:
    """Verify one chain from its latest retention checkpoint (or its start) to its head.

    1. A checkpoint must carry a valid signature; the chain then starts right after it.
    2. Every event must follow its predecessor (seq + 1, prev_hash) and hash to its stored hash.
    3. The last event must be the head's: otherwise the tail was cut off.
    4. The chain must still hold the head that the last nightly anchor (on the platform chain)
       recorded: cutting off the tail and rewriting the head row to match is found that way.
    5. Every event not sealed yet must carry its own valid seal (counted as pending).
    """
    checkpoint = latest_checkpoint(chain_key)
    start_seq, start_hash = 0, ""
    if checkpoint is not None:
        if not checkpoint_signature_valid(checkpoint):
            return ChainReport(chain_key, 0, False, "the retention checkpoint's signature is invalid (forged?)",
                               None, checkpoint.seq)
        start_seq, start_hash = checkpoint.seq, checkpoint.hash
    events = AuditEvent.objects.filter(chain_key=chain_key, seq__gt=start_seq).order_by("seq").iterator(CHUNK)
    report, last_seq, last_hash = verify_events(events, chain_key=chain_key, start_seq=start_seq,
                                                start_hash=start_hash)
    if not report.ok:
        return report
    head = AuditChainHead.objects.filter(chain_key=chain_key).first()
    head_seq, head_hash = (head.last_seq, head.last_hash) if head else (0, "")
    if (head_seq, head_hash) != (last_seq, last_hash):
        return ChainReport(chain_key, report.events, False,
                           f"the chain ends at seq {last_seq} but its head is at seq {head_seq}: "
                           "events at the end were removed (or the head was altered)", None, last_seq + 1)
    if last_seq > start_seq:
        last = AuditEvent.objects.filter(chain_key=chain_key, seq=last_seq).only("id", "key_id", "action").first()
        if last is not None and not last.key_id:
            return ChainReport(chain_key, report.events, False,
                               f"forged: the chain ends with the unkeyed {last.action} event: nothing sealed with the "
                               "audit key follows it (`manage.py migrate` seals the chains it finds unkeyed)",
                               last.pk, last_seq)
    anchored = _anchored_head(chain_key)
    if anchored is not None:
        seq, digest = anchored
        if seq > last_seq:
            return ChainReport(chain_key, report.events, False,
                               f"truncated: the chain ends at seq {last_seq} but was anchored (on the platform chain) "
                               f"at seq {seq}: events at the end were removed and the head rewound", None, last_seq + 1)
        if seq > start_seq and not AuditEvent.objects.filter(chain_key=chain_key, seq=seq, hash=digest).exists():
            event = AuditEvent.objects.filter(chain_key=chain_key, seq=seq).first()
            return ChainReport(chain_key, report.events, False, f"seq {seq} no longer has the anchored hash: the chain "
                               "was rewritten from there on", event.pk if event else None, seq)
    return _check_unsealed(report)


def _check_unsealed(report: ChainReport) -> ChainReport:
    """The chain's report with its unsealed events counted, or the first one whose own seal fails."""
    pending = 0
    for event in AuditEvent.objects.filter(chain_key=report.chain_key, seq__isnull=True).order_by("id").iterator(CHUNK):
        problem = own_seal_problem(event)
        if problem:
            return ChainReport(report.chain_key, report.events, False, problem, event.pk, None, pending)
        pending += 1
    return ChainReport(report.chain_key, report.events, True, pending=pending)


def _anchored_head(chain_key: str) -> tuple[int, str] | None:
    """The (seq, hash) of this chain recorded by the latest anchor on the platform chain, if any."""
    if chain_key == PLATFORM_CHAIN:
        return None
    anchor = (AuditEvent.objects.filter(chain_key=PLATFORM_CHAIN, action=ANCHOR_ACTION, details__heads__has_key=chain_key,
                                        seq__isnull=False).order_by("-seq").values_list("details", flat=True).first())
    if not anchor:
        return None
    seq, digest = anchor["heads"][chain_key]
    return int(seq), str(digest)


def all_chain_keys() -> list[str]:
    """Every chain there is: a chain whose head row was deleted still shows by its events."""
    keys = set(AuditChainHead.objects.values_list("chain_key", flat=True))
    keys |= set(AuditEvent.objects.values_list("chain_key", flat=True).distinct())
    return sorted(keys)


def verify_chains(keys: Iterable[str]) -> list[ChainReport]:
    return [verify_chain(key) for key in keys]


def merge_reports(chains: list[ChainReport], anchored: list[ChainReport]) -> list[ChainReport]:
    """One report per chain: the chain's own first problem, else what the anchors found (chains gone from the
    database entirely show by their anchors alone)."""
    by_key = {report.chain_key: report for report in chains}
    for report in anchored:
        own = by_key.get(report.chain_key)
        if own is None:
            by_key[report.chain_key] = report
        elif own.ok and not report.ok:
            by_key[report.chain_key] = ChainReport(own.chain_key, own.events, False, report.problem, report.event_id,
                                                   report.seq)
    return [by_key[key] for key in sorted(by_key)]
