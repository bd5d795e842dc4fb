"""The audit chain's one hasher: an event's canonical text and its seal. The writer and the verifier both call it.

An event's hash is HMAC-SHA256(audit key `key_id`, prev_hash + canonical text) (plain SHA-256 for events written
before the chain was keyed, whose key_id is empty). The canonical text is the JSON object of the fields below
with sorted keys, no whitespace and non-ASCII as is (trustguard.jsonutil.canonical_json of that object):

    action, actor: [type, id, label], after, before, chain, created_at (ISO 8601 in UTC), details, ip,
    key (only when keyed), request_id, seq, target: [type, id], tenant, user_agent

It is built here from its parts, the ones that are the same for a whole batch (chain, time, request context,
key) encoded once, so that a sweep's thousands of events cost one JSON encoding of their own fields each.
tests/audit/test_hash_format.py pins the format: changing it would break every chain already written.

An unsealed event (audit.sealing) carries its own seal meanwhile: the same HMAC with no previous hash and
`"seq":null` (a chained event always has a number there, so the two can never be taken for each other).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

from trustguard.jsonutil import canonical_json

from .keys import sealing_mac

# A string as canonical_json writes it (ensure_ascii=False), without the encoder's set-up: C, a tenth of the cost.
_string = json.encoder.encode_basestring


class HashedEvent(Protocol):
    """What the hash covers: an AuditEvent, or the RecordedEvent the writer builds."""

    @property
    def chain_key(self) -> str: ...
    @property
    def seq(self) -> int | None: ...
    @property
    def tenant_id(self) -> int | None: ...
    @property
    def action(self) -> str: ...
    @property
    def actor_type(self) -> str: ...
    @property
    def actor_id(self) -> str: ...
    @property
    def actor_label(self) -> str: ...
    @property
    def target_type(self) -> str: ...
    @property
    def target_id(self) -> str: ...
    @property
    def before(self) -> Any: ...
    @property
    def after(self) -> Any: ...
    @property
    def details(self) -> Any: ...
    @property
    def ip(self) -> str | None: ...
    @property
    def user_agent(self) -> str: ...
    @property
    def request_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def key_id(self) -> str: ...


@lru_cache(maxsize=256)
def _context(chain_key: str, created_at: datetime, ip: str | None, key_id: str, request_id: str,
             tenant_id: int | None, user_agent: str) -> tuple[str, str, str]:
    """The text around an event's own fields: the same for every event of one batch on one chain."""
    created = created_at.astimezone(UTC).isoformat()
    key = f'"key":{canonical_json(key_id)},' if key_id else ""
    return (f',"chain":{canonical_json(chain_key)},"created_at":{canonical_json(created)},"details":',
            f',"ip":{canonical_json(ip)},{key}"request_id":{canonical_json(request_id)},"seq":',
            f',"tenant":{canonical_json(tenant_id)},"user_agent":{canonical_json(user_agent)}}}')


@lru_cache(maxsize=256)
def _actor_json(actor_type: str, actor_id: str, actor_label: str) -> str:
    return canonical_json([actor_type, actor_id, actor_label])  # a batch has a handful of actors


def canonical_text(event: HashedEvent, *, encoded: tuple[str, str, str] | None = None) -> str:
    """The canonical JSON the hash covers. `encoded`: (before, after, details) as canonical JSON, when at hand."""
    before, after, details = encoded or (canonical_json(event.before), canonical_json(event.after),
                                         canonical_json(event.details))
    head, middle, tail = _context(event.chain_key, event.created_at, event.ip, event.key_id, event.request_id,
                                  event.tenant_id, event.user_agent)
    return (f'{{"action":{_string(event.action)},'
            f'"actor":{_actor_json(event.actor_type, event.actor_id, event.actor_label)},'
            f'"after":{after},"before":{before}{head}{details}{middle}{"null" if event.seq is None else event.seq},'
            f'"target":[{_string(event.target_type)},{_string(event.target_id)}]{tail}')


def compute_hash(prev_hash: str, event: HashedEvent, *, encoded: tuple[str, str, str] | None = None,
                 mac: hmac.HMAC | None = None) -> str | None:
    """The hash the event must carry after `prev_hash`: the HMAC under its key (None: the ring lacks that key).

    `mac`: audit.keys.sealing_mac(event.key_id), when the caller holds it for a batch (left as it is).
    """
    message = (prev_hash + canonical_text(event, encoded=encoded)).encode()
    if not event.key_id:
        return hashlib.sha256(message).hexdigest()  # written before the chain was keyed
    mac = sealing_mac(event.key_id) if mac is None else mac.copy()
    if mac is None:
        return None
    mac.update(message)
    return mac.hexdigest()
