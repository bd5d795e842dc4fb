"""Verifying hash chains: every event hashes onto its predecessor, from the checkpoint to the head."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .checkpoints import checkpoint_signature_valid, latest_checkpoint
from .models import AuditChainHead, AuditEvent
from .services import PLATFORM_CHAIN, compute_hash

ANCHOR_ACTION = "audit.chains_anchored"

CHUNK = 2000


@dataclass(frozen=True)
class ChainReport:
    chain_key: str
    events: int
    ok: bool
    problem: str = ""
    event_id: int | None = None
    seq: int | None = None

    def describe(self) -> str:
        if self.ok:
            return f"OK {self.chain_key}: {self.events} events"
        where = f"event id={self.event_id} seq={self.seq}" if self.event_id is not None else f"seq={self.seq}"
        return f"BROKEN {self.chain_key}: first broken event {where}: {self.problem}"


def verify_events(events: Iterable[AuditEvent], *, chain_key: str, start_seq: int, start_hash: str,
                  ) -> tuple[ChainReport, int, str]:
    """Walk `events` (in seq order) from (start_seq, start_hash); return the report and where it ended."""
    expected_seq, prev_hash, count = start_seq + 1, start_hash, 0
    for event in events:
        problem = ""
        if event.seq != expected_seq:
            problem = (f"seq {event.seq} where {expected_seq} was expected: events "
                       f"{expected_seq}..{event.seq - 1} are missing" if event.seq > expected_seq
                       else f"seq {event.seq} out of order (expected {expected_seq})")
        elif event.prev_hash != prev_hash:
            problem = "prev_hash does not match the previous event's hash (an event was removed or reordered)"
        elif compute_hash(event.prev_hash, event) != event.hash:
            problem = f"hash mismatch: the {event.action} event was altered after it was written"
        if problem:
            return ChainReport(chain_key, count, False, problem, event.pk, event.seq), expected_seq - 1, prev_hash
        count += 1
        expected_seq, prev_hash = event.seq + 1, event.hash
    return ChainReport(chain_key, count, True), expected_seq - 1, prev_hash


def verify_chain(chain_key: str) -> ChainReport:
    """Verify one chain from its latest retention checkpoint (or its start) to its head.

    1. A checkpoint must carry a valid signature; the chain then starts right after it.
    2. Every event must follow its predecessor (seq + 1, prev_hash) and hash to its stored hash.
    3. The last event must be the head's: otherwise the tail was cut off.
    4. The chain must still hold the head that the last nightly anchor (on the platform chain)
       recorded: cutting off the tail and rewriting the head row to match is found that way.
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
    anchored = _anchored_head(chain_key)
    if anchored is not None:
        seq, digest = anchored
        if seq > last_seq:
            return ChainReport(chain_key, report.events, False,
                               f"the chain ends at seq {last_seq} but was anchored at seq {seq}: events at the end "
                               "were removed and the head rewritten", None, last_seq + 1)
        if seq > start_seq and not AuditEvent.objects.filter(chain_key=chain_key, seq=seq, hash=digest).exists():
            event = AuditEvent.objects.filter(chain_key=chain_key, seq=seq).first()
            return ChainReport(chain_key, report.events, False, f"seq {seq} no longer has the anchored hash: the chain "
                               "was rewritten from there on", event.pk if event else None, seq)
    return report


def _anchored_head(chain_key: str) -> tuple[int, str] | None:
    """The (seq, hash) of this chain recorded by the latest anchor on the platform chain, if any."""
    if chain_key == PLATFORM_CHAIN:
        return None
    anchor = (AuditEvent.objects.filter(chain_key=PLATFORM_CHAIN, action=ANCHOR_ACTION, details__heads__has_key=chain_key)
              .order_by("-seq").values_list("details", flat=True).first())
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
