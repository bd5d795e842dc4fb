"""The sweep's statements do not grow with its rows: a chunk of thousands costs the same round trips as a chunk of two.

A field read per row that the chunk did not load (a deferred column) costs one query per row: at 100k rows that
is most of the sweep (measured: 34 s of 43 s at 20k rows, before requested_by_user was claimed).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.config_queryset import config_changed
from escalations.services import SourceRef, escalation_create
from escalations.sweeps import sweep_deadlines

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CUSTOMER = SourceRef(system="core-banking", entity_type="customer", entity_id="CUST-42")


def sweep_queries(vendor, *, start: datetime, cases: int, after: timedelta) -> tuple[int, int]:
    """Open `cases` SMR cases at `start`, move the clock by `after` and sweep: (cases acted on, queries)."""
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(cases):
            escalation_create(actor=vendor, type="SMR", reason="Unusual cash deposits", source=CUSTOMER,
                              requested_by="analyst@demo.example")
        clock.shift(after)
        # Who may be away is cached per process from the moment it was read on (accounts.delegations); this test
        # sends the clock back between its two sweeps, which no real sweep sees: both start from a cold cache.
        config_changed(vendor.tenant.pk)
        with CaptureQueriesContext(connection) as queries:
            result = sweep_deadlines()
    return result.total, len(queries)


@pytest.mark.parametrize("after", [timedelta(hours=4, seconds=1), timedelta(hours=25)],
                         ids=["re-escalation", "expiry"])
def test_a_sweep_of_six_cases_sends_as_many_statements_as_a_sweep_of_two(vendor, after):
    # The larger sweep first, the smaller days earlier: neither finds the other's cases due.
    six = sweep_queries(vendor, start=T0 + timedelta(days=10), cases=6, after=after)
    two = sweep_queries(vendor, start=T0, cases=2, after=after)
    assert (two[0], six[0]) == (2, 6)
    assert six[1] == two[1]
