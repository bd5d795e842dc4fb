"""The sweeps' batch writer (audit_record_many) stores and chains exactly what audit_record would."""

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
from audit.models import AuditEvent
from audit.services import (
    AuditEntry,
    SystemActor,
    _clean_json,
    _clean_json_slow,
    audit_record,
    audit_record_many,
    chain_key_for,
)
from audit.verification import verify_chain
from escalations.models import EscalationStatus
from trustguard import context
from trustguard.jsonutil import canonical_json, json_text

# JSON-ish values as services pass them: nested containers of str (with NULs), ints, floats (also the ones jsonb
# rewrites), booleans, None, datetimes in and out of UTC, UUIDs, TextChoices members, tuples.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80), st.text(alphabet=st.characters(), max_size=8),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e16, -2.5e300, 1e-7, 0.1, -0.0]),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=1))])), st.datetimes(),
    st.uuids(), st.sampled_from(list(EscalationStatus)))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)


@given(values)
@hypothesis_settings(max_examples=400, deadline=None)
def test_cleaning_without_the_json_round_trip_gives_what_the_round_trip_gives(value):
    assert canonical_json(_clean_json(value)) == canonical_json(_clean_json_slow(value))


def test_values_the_fast_cleaner_does_not_know_take_the_round_trip():
    assert _clean_json({"amount": Decimal("1.50"), 3: "int key"}) == {"amount": "1.50", "3": "int key"}


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


@pytest.mark.django_db
def test_a_batch_stores_each_event_as_audit_record_would_and_the_chain_verifies(make_tenant):
    acme = make_tenant("acme")
    actor = Actor.for_system(acme, "sla_sweep")
    entries = [AuditEntry(acme.pk, "escalation.escalated", actor, "escalation", uuid.UUID(int=i), ODD, {"n": i},
                          {"i": i, "odd": ODD}) for i in range(3)]
    token = context.bind(context.RequestContext(request_id="req-9", ip="2001:0db8::1", user_agent="sweep\x00"))
    try:
        with transaction.atomic():
            single = audit_record(tenant_id=acme.pk, action="escalation.escalated", actor=actor,
                                  target_type="escalation", target_id=uuid.UUID(int=9), before=ODD, after={"n": 9},
                                  details={"i": 9, "odd": ODD})
            recorded = audit_record_many(entries)
    finally:
        context.reset(token)

    stored = list(AuditEvent.objects.filter(chain_key=chain_key_for(acme.pk), seq__gt=single.seq).order_by("seq"))
    assert [e.seq for e in stored] == [single.seq + 1, single.seq + 2, single.seq + 3]
    assert [(e.seq, e.hash, e.prev_hash) for e in stored] == [(r.seq, r.hash, r.prev_hash) for r in recorded]
    single.refresh_from_db()
    for event, entry in zip(stored, entries, strict=True):
        assert event.before == single.before  # the same input, stored the same way by both writers
        assert event.details["odd"] == single.details["odd"]
        assert event.after == entry.after
        assert (event.ip, event.user_agent, event.request_id) == (single.ip, single.user_agent, single.request_id)
        assert event.target_id == str(entry.target_id)
    assert verify_chain(chain_key_for(acme.pk)).ok


@pytest.mark.django_db
def test_a_batch_spanning_tenants_extends_each_tenant_chain(make_tenant):
    acme, globex = make_tenant("acme"), make_tenant("globex")
    entries = [AuditEntry(tenant.pk, "test.happened", Actor.for_system(tenant, "sweep"), details={"i": i})
               for i, tenant in enumerate([acme, globex, acme])]
    entries.append(AuditEntry(None, "test.happened", SystemActor("sweep")))

    with transaction.atomic():
        recorded = audit_record_many(entries)

    assert [r.chain_key for r in recorded] == [f"tenant:{acme.pk}", f"tenant:{globex.pk}", f"tenant:{acme.pk}",
                                               "platform"]
    assert recorded[2].prev_hash == recorded[0].hash
    for key in {r.chain_key for r in recorded}:
        assert verify_chain(key).ok
