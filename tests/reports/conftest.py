"""A known data set for the reports, built with the real lifecycle services at known times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import transaction
from django.test import Client

from accounts.actors import Actor
from audit.services import audit_record
from escalations.models import Escalation, EscalationStatus
from escalations.services import (
    Money,
    SourceRef,
    audit_state,
    escalation_acknowledge,
    escalation_create,
    escalation_decide,
)
from tests.conftest import totp_code

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def at(moment: datetime) -> Any:
    return time_machine.travel(moment, tick=False)


def source(n: int) -> SourceRef:
    return SourceRef(system="shop", entity_type="order", entity_id=f"ORD-{n}")


def decide(actor: Actor, escalation: Escalation, decision: str = "approve", **kwargs: Any) -> Escalation:
    kwargs.setdefault("justification", "Checked the documents.")
    return escalation_decide(actor=actor, escalation=escalation, decision=decision, otp=totp_code(actor.user),
                             **kwargs)


def sweep_moves_up(escalation: Escalation, *, to_role: str) -> None:
    """What the deadline sweep (feat/deadlines) records when an acknowledgement deadline passes:
    a breach and a move one step up the ladder, audited with the state that missed the deadline."""
    with transaction.atomic():
        locked = Escalation.objects.select_for_update().get(pk=escalation.pk)
        before = audit_state(locked)
        system = Actor.for_system(locked.tenant, "sweep")
        audit_record(tenant_id=locked.tenant_id, action="escalation.sla_breached", actor=system,
                     target_type="escalation", target_id=locked.pk, before=before, after=before)
        locked.assigned_role, locked.escalation_level = to_role, locked.escalation_level + 1
        locked.save(update_fields=["assigned_role", "escalation_level"])
        audit_record(tenant_id=locked.tenant_id, action="escalation.escalated", actor=system,
                     target_type="escalation", target_id=locked.pk, before=before, after=audit_state(locked))


def sweep_expires(escalation: Escalation) -> None:
    """What the expiry sweep (feat/deadlines) does to an escalation past expires_at."""
    with transaction.atomic():
        now = datetime.now(UTC)
        Escalation.objects.filter(pk=escalation.pk).update(status=EscalationStatus.EXPIRED, closed_at=now,
                                                           next_deadline_at=None)
        audit_record(tenant_id=escalation.tenant_id, action="escalation.expired",
                     actor=Actor.for_system(escalation.tenant, "sweep"), target_type="escalation",
                     target_id=escalation.pk, details={})


@dataclass
class KnownData:
    escalations: dict[str, Escalation]
    now: datetime


@pytest.fixture
def known_data(demo: dict, vendor: Actor, demo_actor: Callable[[str], Actor]) -> KnownData:
    """Eight escalations of the demo tenant, seven of them created on 2 Nov 2026 from 09:00 UTC.

    e1 SMR        created T0,     acked +30 min,  approved +2 h  (co)
    e2 SMR        created T0+1h,  acked +90 min,  rejected +4 h  (co2)
    e3 HIGH_VALUE created T0+2h,  acked +5 h (deadline 4 h: late), approved +6 h (ceo)
    e4 OPERATION_CHANGE low risk, created T0+3h: approved at once (no approval needed)
    e5 SANCTIONS_MATCH created T0+4h, never acked: breached twice, now with governing_body at level 2
    e6 SMR        created T0+5h,  never acked, expired by the sweep at T0+29h
    e7 VENDOR_FLAGGED created T0-30 days, still open (outside the period; the oldest backlog)
    e8 SMR        created T0+20h, still pending
    """
    co, co2, ceo = demo_actor("co"), demo_actor("co2"), demo_actor("ceo")
    e: dict[str, Escalation] = {}
    with at(T0 - timedelta(days=30)):
        e["e7"] = escalation_create(actor=vendor, reason="Flagged vendor", source=source(7), amount=Money(2_000_000, "NGN"),
                                    flags=["vendor_flagged"])
    with at(T0):
        e["e1"] = escalation_create(actor=vendor, type="SMR", reason="Odd pattern", source=source(1))
    with at(T0 + timedelta(minutes=30)):
        escalation_acknowledge(actor=co, escalation=e["e1"])
    with at(T0 + HOUR):
        e["e2"] = escalation_create(actor=vendor, type="SMR", reason="Cash deposits", source=source(2))
    with at(T0 + 2 * HOUR):
        decide(co, e["e1"])
        e["e3"] = escalation_create(actor=vendor, reason="Large order", source=source(3),
                                    amount=Money(250_000_000, "NGN"), requested_by="buyer@shop.example")
    with at(T0 + HOUR + timedelta(minutes=90)):
        escalation_acknowledge(actor=co2, escalation=e["e2"])
    with at(T0 + 3 * HOUR):
        e["e4"] = escalation_create(actor=vendor, type="OPERATION_CHANGE", risk_level="low", reason="Config tweak",
                                    source=source(4))
    with at(T0 + 4 * HOUR):
        e["e5"] = escalation_create(actor=vendor, type="SANCTIONS_MATCH", reason="Name match", source=source(5))
    with at(T0 + 5 * HOUR):
        decide(co2, e["e2"], decision="reject", justification="Explained by payroll")
        e["e6"] = escalation_create(actor=vendor, type="SMR", reason="Structuring", source=source(6))
    with at(T0 + 5 * HOUR + timedelta(minutes=5)):
        sweep_moves_up(e["e5"], to_role="senior_manager")
    with at(T0 + 7 * HOUR):
        escalation_acknowledge(actor=ceo, escalation=e["e3"])
    with at(T0 + 8 * HOUR):
        decide(ceo, e["e3"])
    with at(T0 + 10 * HOUR):
        sweep_moves_up(e["e5"], to_role="governing_body")
    with at(T0 + 20 * HOUR):
        e["e8"] = escalation_create(actor=vendor, type="SMR", reason="Round amounts", source=source(8))
    with at(T0 + 29 * HOUR):
        sweep_expires(e["e6"])
    for esc in e.values():
        esc.refresh_from_db()
    return KnownData(escalations=e, now=T0 + timedelta(days=2))


@pytest.fixture
def api(demo: dict) -> Callable[[str], Client]:
    """A test client authenticated with a demo person's personal token."""

    def _client(username: str) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Bearer {demo['by_name'][username]['api_token']}")

    return _client
