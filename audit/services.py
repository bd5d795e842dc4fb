"""Writing audit events. Call inside the transaction of the change being audited.

One writer, `audit_record`; each action family (escalations, accounts, step-up, policies,
retention, verification) calls it from its own service, in the same transaction as its change.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from trustguard import context
from trustguard.bulk import bulk_insert_rows
from trustguard.jsonutil import canonical_json

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


@dataclass(frozen=True)
class SystemActor:
    """A system job acting outside any tenant (retention, verification): audit's own actor."""

    job: str

    @property
    def actor_type(self) -> str:
        return "system"

    @property
    def actor_id(self) -> str:
        return self.job

    @property
    def actor_label(self) -> str:
        return f"system:{self.job}"


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


def _clean_text(value: object, limit: int) -> str:
    # PostgreSQL refuses NUL in text; a client-supplied NUL must not turn an audited action into a 500.
    return str(value or "").replace("\x00", "")[:limit]


def _clean_json(value: Any) -> Any:
    """JSON as the database will give it back (so the hash verifies later), without NULs (jsonb refuses them)."""
    value = json.loads(json.dumps(value, cls=DjangoJSONEncoder), parse_constant=str)

    def strip(v: Any) -> Any:
        if isinstance(v, str):
            return v.replace("\x00", "")
        if isinstance(v, float):
            if not math.isfinite(v):
                return str(v)  # jsonb has no NaN or Infinity
            if v.is_integer() and abs(v) >= 1e16:
                return int(v)  # jsonb gives 1e16 back as 10000000000000000, an int: hash what comes back
            return v
        if isinstance(v, list):
            return [strip(x) for x in v]
        if isinstance(v, dict):
            return {k.replace("\x00", ""): strip(x) for k, x in v.items()}
        return v

    return strip(value)


def _clean_ip(value: str | None) -> str | None:
    """The address exactly as GenericIPAddressField stores it, or None when it is not an address."""
    if not value:
        return None
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        return None
    return clean_ipv6_address(str(parsed)) if parsed.version == 6 else str(parsed)


def lock_chain_head(key: str) -> AuditChainHead:
    """Lock the chain head, creating it on first use (ON CONFLICT DO NOTHING: no race, no savepoint)."""
    head = AuditChainHead.objects.select_for_update().filter(chain_key=key).first()
    if head is None:
        AuditChainHead.objects.bulk_create([AuditChainHead(chain_key=key)], ignore_conflicts=True)
        head = AuditChainHead.objects.select_for_update().get(chain_key=key)
    return head


def _new_event(head: AuditChainHead, *, tenant_id: int | None, action: str, actor: AuditActor, target_type: str,
               target_id: object, before: dict[str, Any] | None, after: dict[str, Any] | None,
               details: dict[str, Any] | None, ctx: context.RequestContext | None, now: datetime) -> AuditEvent:
    """The next event on `head`'s chain, hashed, with every value as the database will give it back."""
    event = AuditEvent(
        chain_key=head.chain_key,
        seq=head.last_seq + 1,
        tenant_id=tenant_id,
        action=_clean_text(action, 64),
        actor_type=_clean_text(actor.actor_type, 16),
        actor_id=_clean_text(actor.actor_id, 64),
        actor_label=_clean_text(actor.actor_label, 255),
        target_type=_clean_text(target_type, 64),
        target_id=_clean_text(target_id, 64),
        before=_clean_json(before) if before is not None else None,
        after=_clean_json(after) if after is not None else None,
        details=_clean_json(details or {}),
        ip=_clean_ip(ctx.ip) if ctx else None,
        user_agent=_clean_text(ctx.user_agent, 512) if ctx else "",
        request_id=_clean_text(ctx.request_id, 128) if ctx else "",
        created_at=now,
        prev_hash=head.last_hash,
    )
    event.hash = compute_hash(head.last_hash, event)
    head.last_seq, head.last_hash = event.seq, event.hash
    return event


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
    """Append one event to the tenant's chain (the platform chain when tenant_id is None).

    1. Lock the chain head (created on first use) so writers of one chain queue here; the lock
       is held until commit, so the next writer sees this event's hash: the chain never forks.
    2. Build the event with the request context (ip, user agent, correlation id), every value
       normalised to what the database will give back, so the hash verifies later.
    3. Hash it onto the previous hash, insert it, move the head.

    Call it as late as possible in the business transaction: the head lock is held until commit.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    key = chain_key_for(tenant_id)
    head = lock_chain_head(key)
    # Taken under the head lock: along a chain, time follows seq (barring a clock step).
    event = _new_event(head, tenant_id=tenant_id, action=action, actor=actor, target_type=target_type,
                       target_id=target_id, before=before, after=after, details=details, ctx=context.current(),
                       now=timezone.now())
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
    2. Build and hash each event onto its chain in the order given (the same builder as audit_record).
    3. Insert them in bulk and move each head once.

    Same rule as audit_record: call it last in the business transaction.
    """
    if not entries:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record_many must run inside the transaction of the changes it records")
    keys = sorted({chain_key_for(entry.tenant_id) for entry in entries})
    heads = {key: lock_chain_head(key) for key in keys}
    ctx = context.current()
    now = timezone.now()
    events = [
        _new_event(heads[chain_key_for(entry.tenant_id)], tenant_id=entry.tenant_id, action=entry.action,
                   actor=entry.actor, target_type=entry.target_type, target_id=entry.target_id, before=entry.before,
                   after=entry.after, details=entry.details, ctx=ctx, now=now)
        for entry in entries
    ]
    bulk_insert_rows(AuditEvent, events)
    for key in keys:
        head = heads[key]
        AuditChainHead.objects.filter(chain_key=key).update(last_seq=head.last_seq, last_hash=head.last_hash)
    audit_events_recorded.send(sender=AuditEvent, events=events)
    return events
