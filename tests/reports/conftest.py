"""A known data set for the reports, built with the real lifecycle services at known times."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from accounts.actors import Actor
from escalations.models import Escalation
from escalations.services import (
    Money,
    SourceRef,
    escalation_acknowledge,
    escalation_create,
    escalation_decide,
)
from escalations.sweeps import sweep_deadlines
from tests.conftest import totp_code

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def at(moment: datetime) -> Any:
    return time_machine.travel(moment, tick=False)


def source(n: int) -> SourceRef:
    return SourceRef(system="shop", entity_type="order", entity_id=f"ORD-{n}")


def decide(actor: Actor, escalation: Escalation, decision: str = "approve", **kwargs: Any) -> Escalation:
    kwargs.setdefault("justification", "Checked the documents.")
    assert actor.user is not None
    return escalation_decide(actor=actor, escalation=escalation, decision=decision, otp=totp_code(actor.user),
                             **kwargs)


def sweep(moment: datetime, *passes: str) -> None:
    """Run the real deadline sweep (the beat job) at `moment`, only the named passes."""
    with at(moment):
        sweep_deadlines(only=passes)


@dataclass
class KnownData:
    escalations: dict[str, Escalation]
    now: datetime


@pytest.fixture
def known_data(demo: dict, vendor: Actor, demo_actor: Callable[[str], Actor]) -> KnownData:
    """Eight escalations of the demo tenant, seven of them created on 2 Nov 2026 from 09:00 UTC (T0);
    deadlines are kept by the real sweep, run at the times below.

    e1 SMR             T0      acked +30 min, approved +2 h (co)
    e2 SMR             T0+1h   acked +90 min, rejected +4 h (co2)
    e3 HIGH_VALUE      T0+2h   acked +5 h (deadline 4 h: late, but no sweep ran meanwhile), approved +6 h (ceo)
    e4 OPERATION_CHANGE T0+3h  low risk: approved at once (no approval needed)
    e5 SANCTIONS_MATCH T0+4h   ack deadline 1 h; never acked: co -> senior_manager (sweep T0+5h05),
                               -> governing_body (T0+10h), top alert at level 2 (T0+12h), rejected on expiry
                               (high risk) by the sweep at T0+29h
    e6 SMR             T0+5h   never acked: co -> senior_manager (T0+10h), expired (T0+29h)
    e7 PROGRAM_APPROVAL T0-3d  governing_body, still open (outside the period; the oldest backlog);
                               top-of-ladder alert at T0+5h05
    e8 SMR             T0+20h  still pending
    """
    co, co2, ceo = demo_actor("co"), demo_actor("co2"), demo_actor("ceo")
    e: dict[str, Escalation] = {}
    with at(T0 - timedelta(days=3)):
        e["e7"] = escalation_create(actor=vendor, type="PROGRAM_APPROVAL", reason="AML programme v7", source=source(7))
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
    sweep(T0 + 5 * HOUR + timedelta(minutes=5), "re-escalation")
    with at(T0 + 7 * HOUR):
        escalation_acknowledge(actor=ceo, escalation=e["e3"])
    with at(T0 + 8 * HOUR):
        decide(ceo, e["e3"])
    sweep(T0 + 10 * HOUR, "re-escalation")
    sweep(T0 + 12 * HOUR, "re-escalation")
    with at(T0 + 20 * HOUR):
        e["e8"] = escalation_create(actor=vendor, type="SMR", reason="Round amounts", source=source(8))
    sweep(T0 + 29 * HOUR, "expiry")
    for esc in e.values():
        esc.refresh_from_db()
    return KnownData(escalations=e, now=T0 + timedelta(days=2))


@pytest.fixture
def api(demo: dict) -> Callable[[str], Client]:
    """A test client authenticated with a demo person's personal token."""

    def _client(username: str) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Bearer {demo['by_name'][username]['api_token']}")

    return _client
