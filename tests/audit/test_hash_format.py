"""The hash format is pinned: a known event gives known bytes and a known seal.

Every chain ever written was sealed in this format; a change to it (a field renamed, a key order, a separator,
the time's form) would make every stored chain fail verification. If this test fails, the change is the bug.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from django.db import transaction

from accounts.actors import Actor
from audit.actions import AuditAction
from audit.hashing import canonical_text, compute_hash
from audit.models import AuditEvent
from audit.services import audit_record

KEY = ("k1", "format-test-key-0123456789abcdef0123")
PREV = "ab" * 32

EVENT = AuditEvent(
    chain_key="tenant:7", seq=42, tenant_id=7, action="decision.recorded", actor_type="user", actor_id="3",
    actor_label="Ngozi Okafor (co)", target_type="escalation", target_id="0190f3c2-0000-7000-8000-000000000001",
    before={"status": "pending", "approvals_received": 0}, after={"status": "approved", "approvals_received": 1},
    details={"decision": {"decision": "approve", "role": "compliance_officer"}, "note": "₦ 2,500.00 — ok",
             "z": [1, 2.5, None, True]},
    ip="2001:db8::1", user_agent="Mozilla/5.0", request_id="req-1",
    created_at=datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=UTC), key_id="k1", prev_hash=PREV)

TEXT = ('{"action":"decision.recorded","actor":["user","3","Ngozi Okafor (co)"],'
        '"after":{"approvals_received":1,"status":"approved"},"before":{"approvals_received":0,"status":"pending"},'
        '"chain":"tenant:7","created_at":"2026-03-02T08:00:00.123456+00:00",'
        '"details":{"decision":{"decision":"approve","role":"compliance_officer"},"note":"₦ 2,500.00 — ok",'
        '"z":[1,2.5,null,true]},"ip":"2001:db8::1","key":"k1","request_id":"req-1","seq":42,'
        '"target":["escalation","0190f3c2-0000-7000-8000-000000000001"],"tenant":7,"user_agent":"Mozilla/5.0"}')
SEAL = "620e04ed2372ed5b01bfdcf3096065e654016f04a7ca4c2d7aabe246196d15e9"
UNKEYED_SHA256 = "b67608586aa65dbf0db128d2ea947e4d2e85ed950554cbb50e35ee512376b9d0"


def test_a_known_event_has_known_canonical_text_and_seal(settings):
    settings.AUDIT_KEYS = [KEY]

    assert canonical_text(EVENT) == TEXT
    assert compute_hash(PREV, EVENT) == SEAL
    # The seal is HMAC-SHA256 under the audit key, over the previous hash and the text's UTF-8 bytes:
    assert hmac.new(KEY[1].encode(), (PREV + TEXT).encode(), hashlib.sha256).hexdigest() == SEAL


def test_an_event_from_before_the_chain_was_keyed_has_no_key_field_and_a_plain_sha256(settings):
    settings.AUDIT_KEYS = [KEY]
    unkeyed = AuditEvent(**{f.attname: getattr(EVENT, f.attname) for f in AuditEvent._meta.concrete_fields})
    unkeyed.key_id = ""

    assert canonical_text(unkeyed) == TEXT.replace('"key":"k1",', "")
    assert compute_hash(PREV, unkeyed) == UNKEYED_SHA256


def test_the_time_is_hashed_in_utc_whatever_zone_the_event_carries(settings):
    from datetime import timedelta, timezone

    settings.AUDIT_KEYS = [KEY]
    lagos = AuditEvent(**{f.attname: getattr(EVENT, f.attname) for f in AuditEvent._meta.concrete_fields})
    lagos.created_at = EVENT.created_at.astimezone(timezone(timedelta(hours=1)))

    assert compute_hash(PREV, lagos) == SEAL


def test_an_event_sealed_with_a_key_the_ring_lacks_has_no_expected_hash(settings):
    settings.AUDIT_KEYS = [("k2", "another-key-" + "2" * 32)]

    assert compute_hash(PREV, EVENT) is None


@pytest.mark.django_db
def test_the_writer_seals_in_this_format(make_tenant, settings):
    settings.AUDIT_KEYS = [KEY]
    acme = make_tenant("acme")
    with transaction.atomic():
        written = audit_record(tenant_id=acme.pk, action=AuditAction.DECISION_RECORDED, actor=Actor.for_system(acme, "t"),
                               target_type="escalation", target_id="e-1", details={"note": "₦"})

    stored = AuditEvent.objects.get(pk=written.id)
    text = canonical_text(stored)
    assert text.startswith('{"action":"decision.recorded","actor":["system",') and '"key":"k1"' in text
    assert stored.hash == hmac.new(KEY[1].encode(), (stored.prev_hash + text).encode(), hashlib.sha256).hexdigest()
