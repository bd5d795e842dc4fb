"""The event catalogue is the one place event types are spelled, and it says what the product writes.

- Product code names event types through notifications.outbox.catalogue, never as string literals.
- Each entry matches the contract: the types of CONTRACT.md section 4 ("Events") and docs/WEBHOOKS.md,
  the envelope, and the documented data; and what the services and sweeps really write fits its entry.
"""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings

from accounts.delegations import DelegationInput, delegation_create, delegation_revoke
from escalations.amendments import escalation_amend
from escalations.comments import comment_post
from escalations.obligation_actions import condition_add_evidence, condition_resolve
from escalations.services import (
    Money,
    SourceRef,
    escalation_acknowledge,
    escalation_cancel,
    escalation_create,
    escalation_decide,
    escalation_record_execution,
)
from escalations.standins import standins_sweep
from escalations.sweeps import sweep_deadlines
from notifications.models import OutboxEvent
from notifications.outbox import catalogue
from notifications.outbox.catalogue import CATALOGUE, EVENT_TYPES, event_kind
from tests.conftest import totp_code

ROOT = Path(settings.BASE_DIR)
CATALOGUE_FILE = ROOT / "notifications" / "outbox" / "catalogue.py"
PRODUCT_DIRS = ["accounts", "approvals", "audit", "dashboard", "escalations", "notifications", "reports", "trustguard",
                "bench"]
# The other catalogue: audit actions, some of which share an event's spelling ("escalation.created" is both).
AUDIT_ACTIONS_FILE = ROOT / "audit" / "actions.py"
# CONTRACT.md section 4, "Events": every state change writes one of these (version 1, envelope below).
CONTRACT_EVENT_TYPES = {"escalation.created", "escalation.acknowledged", "escalation.escalated", "escalation.approved",
                        "escalation.rejected", "escalation.deferred", "escalation.expired", "escalation.cancelled",
                        "escalation.executed"}
CONTRACT_ENVELOPE = {"id", "type", "version", "occurred_at", "tenant", "data"}


def _product_files() -> list[Path]:
    return [path for name in PRODUCT_DIRS if (ROOT / name).is_dir() for path in (ROOT / name).rglob("*.py")
            if "migrations" not in path.parts]


def _event_type_literals(path: Path, root: Path = ROOT) -> list[str]:
    """The string literals in `path` that spell a catalogued event type."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [f"{path.relative_to(root)}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in EVENT_TYPES]


def test_no_product_code_spells_an_event_type_outside_the_catalogue():
    files = [p for p in _product_files() if p not in (CATALOGUE_FILE, AUDIT_ACTIONS_FILE)]
    assert len(files) > 50  # the scan sees the product

    spelled = [hit for path in files for hit in _event_type_literals(path)]

    assert spelled == [], "name event types through notifications.outbox.catalogue:\n" + "\n".join(spelled)


def test_the_scan_finds_a_spelled_event_type(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text('ROUTED = {"escalation.created"}\nif event.type == "escalation.reminder": pass\nOTHER = "order.x"\n')

    assert _event_type_literals(sneaky, tmp_path) == ["sneaky.py:1: 'escalation.created'",
                                                      "sneaky.py:2: 'escalation.reminder'"]


def test_every_entry_is_unique_versioned_and_about_an_aggregate():
    keys = [(kind.type, kind.version) for kind in CATALOGUE]
    assert len(keys) == len(set(keys))
    for kind in CATALOGUE:
        assert re.fullmatch(r"[a-z]+(\.[a-z_]+)+", kind.type) and kind.version >= 1 and kind.description
        assert kind.type.startswith(kind.aggregate_type + ".")
        assert event_kind(kind.type, kind.version) is kind


def test_the_catalogue_holds_every_event_type_of_the_contract():
    assert CONTRACT_EVENT_TYPES <= EVENT_TYPES
    assert all(event_kind(t, 1) is not None for t in CONTRACT_EVENT_TYPES)


def test_the_webhooks_guide_lists_exactly_the_catalogue():
    text = (ROOT / "docs" / "WEBHOOKS.md").read_text()
    listed = re.search(r"^Event types: (.+?)\.\n", text, re.M | re.S)
    assert listed is not None
    # "`escalation.created`, `.acknowledged`, ... `delegation.created`, `.started`": a suffix takes the last prefix.
    names, prefix = set(), "escalation"
    for head, suffix in re.findall(r"`([a-z]+)?(\.[a-z_]+)`", listed.group(1)):
        prefix = head or prefix
        names.add(f"{prefix}{suffix}")
    assert names == EVENT_TYPES


def test_the_documented_envelope_and_data_fit_the_catalogue(make_tenant):
    text = (ROOT / "docs" / "WEBHOOKS.md").read_text()
    example = re.search(r'^(\{"id": .+?\}\})\n', text, re.M | re.S)
    assert example is not None
    keys = set(re.findall(r'"([a-z_]+)":', example.group(1)))
    assert keys >= CONTRACT_ENVELOPE
    event = OutboxEvent(type="escalation.approved", version=1, occurred_at=datetime(2026, 1, 1, tzinfo=UTC), data={})
    event.tenant = make_tenant("acme")
    assert set(event.envelope()) == CONTRACT_ENVELOPE

    approved = catalogue.ESCALATION_APPROVED
    data_keys = keys - CONTRACT_ENVELOPE - {"system", "entity_type", "entity_id", "url", "value_minor", "currency"}
    assert data_keys <= approved.required_keys | approved.optional_keys, data_keys
    assert set(catalogue.Source.__required_keys__) == {"system", "entity_type", "entity_id", "url"}
    assert set(catalogue.Money.__required_keys__) == {"value_minor", "currency"}
    for kind in CATALOGUE:  # "data never carries the escalation's payload or customer contact"
        assert not {"payload", "contact"} & (kind.required_keys | kind.optional_keys)


T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CUSTOMER = SourceRef(system="core-banking", entity_type="customer", entity_id="CUST-42")


@pytest.mark.django_db
def test_what_the_services_and_sweeps_write_fits_the_catalogue(demo, vendor, demo_actor):
    co, sm, ceo = demo_actor("co"), demo_actor("sm"), demo_actor("ceo")
    with time_machine.travel(T0, tick=False) as clock:
        def step() -> None:
            clock.shift(timedelta(seconds=61))  # a fresh one-time code for the next decision

        two_stages = escalation_create(actor=vendor, type="HIGH_RISK_CDD", reason="PEP onboarding", source=CUSTOMER)
        escalation_acknowledge(actor=co, escalation=two_stages)
        escalation_decide(actor=co, escalation=two_stages, decision="approve", justification="Documents fine",
                          otp=totp_code(co.user), conditions=["Source of funds letter", "Enhanced monitoring"])
        step()
        two_stages = escalation_decide(actor=sm, escalation=two_stages, decision="approve", justification="Agreed",
                                       otp=totp_code(sm.user))
        letter, monitoring = (c["id"] for c in two_stages.conditions)
        condition_add_evidence(actor=vendor, escalation=two_stages, condition_id=letter, note="Letter received")
        condition_resolve(actor=co, escalation=two_stages, condition_id=letter, status="met")
        condition_resolve(actor=sm, escalation=two_stages, condition_id=monitoring, status="waived",
                          justification="Covered by the monitoring programme")
        escalation_record_execution(actor=vendor, escalation=two_stages, result={"account": "opened"})
        step()
        with_obligation = escalation_create(actor=vendor, type="SMR", reason="Wire", source=CUSTOMER)
        escalation_decide(actor=co, escalation=with_obligation, decision="approve", justification="Fine",
                          otp=totp_code(co.user),
                          conditions=[{"text": "File the report", "due_at": (T0 + 5 * HOUR).isoformat()}])
        step()
        rejected = escalation_create(actor=vendor, type="SMR", reason="Cash deposits", source=CUSTOMER)
        escalation_decide(actor=co, escalation=rejected, decision="reject", justification="Not suspicious",
                          otp=totp_code(co.user))
        step()
        deferred = escalation_create(actor=vendor, type="SMR", reason="Transfers", source=CUSTOMER)
        escalation_decide(actor=co, escalation=deferred, decision="defer", justification="Waiting for statements",
                          otp=totp_code(co.user), defer_until=T0 + 2 * HOUR)
        comment_post(actor=co, escalation=deferred, body="Which statements, exactly?", question=True)
        cancelled = escalation_create(actor=vendor, type="SMR", reason="Typo", source=CUSTOMER)
        escalation_amend(actor=vendor, escalation=cancelled, changes={"reason": "Typo, corrected"},
                         justification="The reason was wrong")
        escalation_cancel(actor=vendor, escalation=cancelled, reason="sent twice")
        escalation_create(actor=vendor, type="OPERATION_CHANGE", reason="Restart a replica", source=CUSTOMER,
                          risk_level="low")  # needs no approval: approved at once
        escalation_create(actor=vendor, type="SMR", reason="Structuring", source=CUSTOMER,
                          amount=Money(250_000_000, "NGN"))
        # reminder, escalated, escalated + a condition overdue, sla_breached, expired
        for hours in (3.5, 4.5, 8.5, 12.5, 25):
            clock.move_to(T0 + hours * HOUR)
            sweep_deadlines()
        escalation_decide(actor=ceo, escalation=escalation_create(
            actor=vendor, reason="Large order", amount=Money(250_000_000, "NGN"),
            source=SourceRef("shop", "order", "ORD-1")), decision="approve", justification="Known customer",
            otp=totp_code(ceo.user))
        # Out of office (issue 19): set (created), announced (started; the CEO's open order has nobody present to
        # act: unstaffed), run out (ended); another ended early (revoked).
        escalation_create(actor=vendor, reason="Another order", amount=Money(250_000_000, "NGN"),
                          source=SourceRef("shop", "order", "ORD-2"))
        now = T0 + 25 * HOUR
        delegation_create(actor=ceo, delegator=ceo.user, known_types={"HIGH_VALUE"},
                          wanted=DelegationInput(delegate=None, starts_at=now, ends_at=now + HOUR))
        standins_sweep()
        clock.move_to(now + 2 * HOUR)
        standins_sweep()
        revoked = delegation_create(actor=sm, delegator=sm.user, known_types={"HIGH_VALUE"}, wanted=DelegationInput(
            delegate=co.user, starts_at=now + 3 * HOUR, ends_at=now + 4 * HOUR))
        delegation_revoke(actor=sm, delegation_id=revoked.pk)

    written = list(OutboxEvent.objects.order_by("id"))
    seen = {(e.type, e.version) for e in written}
    assert seen == {(kind.type, kind.version) for kind in CATALOGUE}  # every entry is written by something
    for event in written:
        kind = event_kind(event.type, event.version)
        assert kind is not None and event.aggregate_type == kind.aggregate_type
        assert kind.payload_problems(event.data) == [], (event.type, event.data)
        assert json.loads(json.dumps(event.envelope()))["type"] == event.type  # byte-identical type on the wire
