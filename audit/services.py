"""Writing audit events. Call inside the transaction of the change being audited."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from trustguard import context
from trustguard.bulk import bulk_insert_rows
from trustguard.jsonutil import canonical_json, to_jsonable

from .models import AuditChainHead, AuditEvent
from .signals import audit_events_recorded

PLATFORM_CHAIN = "platform"


class AuditActor(Protocol):
    """Whoever acted: a user, an API key or a system job. accounts.Actor satisfies this."""

    @property
    def actor_type(self) -> str: ...
    @property
    def actor_id(self) -> str: ...
    @property
    def actor_label(self) -> str: ...


def chain_key_for(tenant_id: int | None) -> str:
    return f"tenant:{tenant_id}" if tenant_id is not None else PLATFORM_CHAIN


def event_payload(event: AuditEvent) -> dict[str, Any]:
    """The fields covered by the hash (everything but the hashes themselves and the row id)."""
    created = event.created_at.astimezone(UTC).isoformat()
    return {
        "chain": event.chain_key,
        "seq": event.seq,
        "tenant": event.tenant_id,
        "action": event.action,
        "actor": [event.actor_type, event.actor_id, event.actor_label],
        "target": [event.target_type, event.target_id],
        "before": event.before,
        "after": event.after,
        "details": event.details,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "created_at": created,
    }


def compute_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + canonical_json(event_payload(event))).encode()).hexdigest()


def audit_record(
    *,
    tenant_id: int | None,
    action: str,
    actor: AuditActor,
    target_type: str = "",
    target_id: object = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the tenant's chain.

    1. Lock the chain head (created on first use) so writers of one tenant queue here.
    2. Build the event with the request context (ip, user agent, correlation id).
    3. Hash it onto the previous hash, insert it, move the head.

    Call it as late as possible in the business transaction: the head lock is held until commit.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    key = chain_key_for(tenant_id)
    AuditChainHead.objects.get_or_create(chain_key=key)
    head = AuditChainHead.objects.select_for_update().get(chain_key=key)
    ctx = context.current()
    event = AuditEvent(
        chain_key=key,
        seq=head.last_seq + 1,
        tenant_id=tenant_id,
        action=action,
        actor_type=actor.actor_type,
        actor_id=str(actor.actor_id or "")[:64],
        actor_label=(actor.actor_label or "")[:255],
        target_type=target_type,
        target_id=str(target_id or "")[:64],
        before=to_jsonable(before) if before is not None else None,
        after=to_jsonable(after) if after is not None else None,
        details=to_jsonable(details or {}),
        ip=ctx.ip if ctx else None,
        user_agent=ctx.user_agent if ctx else "",
        request_id=ctx.request_id if ctx else "",
        created_at=timezone.now(),
        prev_hash=head.last_hash,
    )
    event.hash = compute_hash(head.last_hash, event)
    event.save(force_insert=True)
    AuditChainHead.objects.filter(chain_key=key).update(last_seq=event.seq, last_hash=event.hash)
    audit_events_recorded.send(sender=AuditEvent, events=[event])
    return event


@dataclass(frozen=True)
class AuditEntry:
    """One event for audit_record_many: the same fields audit_record takes."""

    tenant_id: int | None
    action: str
    actor: AuditActor
    target_type: str = ""
    target_id: object = ""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    details: dict[str, Any] | None = None


def audit_record_many(entries: Sequence[AuditEntry]) -> list[AuditEvent]:
    """audit_record for a batch (sweeps): the same events and chain, in a few queries.

    1. Lock every chain head involved, in key order (two batch writers never deadlock).
    2. Build and hash each event onto its chain in the order given.
    3. Insert them in bulk and move each head once.

    Same rule as audit_record: call it last in the business transaction.
    """
    if not entries:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record_many must run inside the transaction of the changes it records")
    keys = sorted({chain_key_for(entry.tenant_id) for entry in entries})
    for key in keys:
        AuditChainHead.objects.get_or_create(chain_key=key)
    heads = {head.chain_key: head for head in AuditChainHead.objects.select_for_update().filter(chain_key__in=keys)
             .order_by("chain_key")}
    ctx = context.current()
    now = timezone.now()
    events = []
    for entry in entries:
        head = heads[chain_key_for(entry.tenant_id)]
        event = AuditEvent(
            chain_key=head.chain_key,
            seq=head.last_seq + 1,
            tenant_id=entry.tenant_id,
            action=entry.action,
            actor_type=entry.actor.actor_type,
            actor_id=str(entry.actor.actor_id or "")[:64],
            actor_label=(entry.actor.actor_label or "")[:255],
            target_type=entry.target_type,
            target_id=str(entry.target_id or "")[:64],
            before=to_jsonable(entry.before) if entry.before is not None else None,
            after=to_jsonable(entry.after) if entry.after is not None else None,
            details=to_jsonable(entry.details or {}),
            ip=ctx.ip if ctx else None,
            user_agent=ctx.user_agent if ctx else "",
            request_id=ctx.request_id if ctx else "",
            created_at=now,
            prev_hash=head.last_hash,
        )
        event.hash = compute_hash(head.last_hash, event)
        head.last_seq, head.last_hash = event.seq, event.hash
        events.append(event)
    bulk_insert_rows(AuditEvent, events)
    for key in keys:
        head = heads[key]
        AuditChainHead.objects.filter(chain_key=key).update(last_seq=head.last_seq, last_hash=head.last_hash)
    audit_events_recorded.send(sender=AuditEvent, events=events)
    return events
