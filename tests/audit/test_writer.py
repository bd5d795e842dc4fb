"""The one audit writer: what it returns is what it stored, whichever way the rows went in, and the chain verifies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.actors import Actor
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.sealing import audit_seal_pending
from audit.services import (
    _INSERT_UP_TO,
    AuditEntry,
    RecordedEvent,
    SystemActor,
    _clean_json,
    audit_record,
    audit_record_many,
    chain_key_for,
)
from audit.verification import verify_chain
from escalations.models import EscalationStatus
from trustguard import context
from trustguard.jsonutil import canonical_json, json_text


def test_values_json_writes_as_text_are_stored_as_their_text_and_keys_as_json_writes_them():
    assert _clean_json({"amount": Decimal("1.50"), 3: "int key"}) == {"amount": "1.50", "3": "int key"}
    assert _clean_json({None: 1, True: 2, 1.5: [float("nan"), 1e16, "a\x00b"]}) == {
        "null": 1, "true": 2, "1.5": ["NaN", 10**16, "ab"]}


@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.floats(allow_nan=False)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)),
                    max_leaves=12))
@hypothesis_settings(max_examples=300, deadline=None)
def test_the_reused_json_encoders_write_what_json_dumps_writes(value):
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert json_text(value) == json.dumps(value, cls=DjangoJSONEncoder)


ODD = {"status": EscalationStatus.PENDING, "note": "nul\x00inside", "when": datetime(2026, 3, 2, 8, 0, 0, 123456, UTC),
       "lagos": datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=1))), "id": uuid.UUID(int=7),
       "numbers": (1e16, float("nan"), float("-inf"), 2**70, 0.5), "nested": [{"k\x00": None}], "money": Decimal("2.50")}


def assert_stored_as_returned(recorded: list[RecordedEvent]) -> None:
    stored = AuditEvent.objects.in_bulk([r.id for r in recorded])
    assert len(stored) == len(recorded)
    for r in recorded:
        row = stored[r.id]
        assert [getattr(row, name) for name in RecordedEvent._fields] == list(r), f"event {r.seq} is not stored as hashed"


@pytest.mark.django_db
@pytest.mark.parametrize("batch", [1, 3, _INSERT_UP_TO + 6], ids=["one", "a few", "a sweep's many"])
def test_events_are_stored_exactly_as_the_writer_hashed_them_and_the_chain_verifies(make_tenant, batch):
    acme = make_tenant("acme")
    actor = Actor.for_system(acme, "sla_sweep")
    entries = [AuditEntry(acme.pk, AuditAction.ESCALATION_ESCALATED, actor, "escalation", uuid.UUID(int=i), ODD,
                          {"n": i}, {"i": i, "odd": ODD}) for i in range(batch)]
    token = context.bind(context.RequestContext(request_id="req-9", ip="2001:0db8::1", user_agent="sweep\x00"))
    try:
        with transaction.atomic():
            single = audit_record(tenant_id=acme.pk, action=AuditAction.ESCALATION_ESCALATED, actor=actor,
                                  target_type="escalation", target_id=uuid.UUID(int=9), before=ODD, after={"n": 9},
                                  details={"i": 9, "odd": ODD})
            recorded = audit_record_many(entries)
    finally:
        context.reset(token)

    assert_stored_as_returned([single, *recorded])  # unsealed, each with its own seal, exactly as written
    assert {(r.seq, r.prev_hash) for r in [single, *recorded]} == {(None, "")}
    audit_seal_pending()
    single_row = AuditEvent.objects.get(pk=single.id)
    assert single_row.seq is not None
    stored = list(AuditEvent.objects.filter(chain_key=chain_key_for(acme.pk), seq__gt=single_row.seq).order_by("seq"))
    assert [e.pk for e in stored] == [r.id for r in recorded]  # chained in the order written
    assert [e.seq for e in stored] == [single_row.seq + 1 + i for i in range(batch)]
    assert [e.prev_hash for e in stored] == [single_row.hash] + [e.hash for e in stored[:-1]]
    for event, entry in zip(stored, entries, strict=True):
        assert event.before == single_row.before  # the same input, stored the same way whichever way it went in
        assert event.details["odd"] == single_row.details["odd"]
        assert event.after == entry.after
        assert (event.ip, event.user_agent, event.request_id) == (single_row.ip, single_row.user_agent,
                                                                  single_row.request_id) == ("2001:db8::1", "sweep",
                                                                                             "req-9")
        assert event.target_id == str(entry.target_id)
    assert verify_chain(chain_key_for(acme.pk)).ok


@pytest.mark.django_db
def test_a_batch_spanning_tenants_extends_each_tenant_chain(make_tenant):
    acme, globex = make_tenant("acme"), make_tenant("globex")
    entries = [AuditEntry(tenant.pk, AuditAction.DECISION_RECORDED, Actor.for_system(tenant, "sweep"), details={"i": i})
               for i, tenant in enumerate([acme, globex, acme])]
    entries.append(AuditEntry(None, AuditAction.NOTIFICATIONS_PURGED, SystemActor("sweep")))

    with transaction.atomic():
        recorded = audit_record_many(entries)

    assert [r.chain_key for r in recorded] == [f"tenant:{acme.pk}", f"tenant:{globex.pk}", f"tenant:{acme.pk}",
                                               "platform"]
    assert_stored_as_returned(recorded)
    audit_seal_pending()
    sealed = {e.pk: e.seq or 0 for e in AuditEvent.objects.filter(pk__in=[r.id for r in recorded])}
    assert sealed[recorded[0].id] > 0 and sealed[recorded[2].id] == sealed[recorded[0].id] + 1
    sealed_events = {e.pk: e for e in AuditEvent.objects.filter(pk__in=[r.id for r in recorded])}
    assert sealed_events[recorded[2].id].prev_hash == sealed_events[recorded[0].id].hash
    for key in {r.chain_key for r in recorded}:
        assert verify_chain(key).ok
