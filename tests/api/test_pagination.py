"""The one keyset paginator (trustguard.api.pagination): every row once, in order, with ties and NULL deadlines,
sent as a row comparison the queue index can walk; old cursors keep working, forged ones are a 400."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.actors import Actor
from escalations.models import Escalation
from escalations.selectors import QueueFilters, escalation_queue, paginate_queue
from escalations.services import SourceRef, escalation_create
from trustguard.api.pagination import KeysetPagination, RowAfter
from trustguard.errors import ValidationFailed

pytestmark = pytest.mark.django_db
ROW_COMPARISON = re.compile(r'\("escalations_escalation"\."next_deadline_at", "escalations_escalation"\."id"\) > \(')


@pytest.fixture
def cases(demo: dict, vendor: Actor) -> list[Escalation]:
    """Nine open cases: three share a deadline, two have none, the rest are spread around them."""
    made = [escalation_create(actor=vendor, type="SMR", reason="Odd pattern",
                              source=SourceRef("shop", "order", f"ORD-{i}")) for i in range(9)]
    base = timezone.now().replace(microsecond=0) + timedelta(hours=2)
    deadlines = [base, base, base, None, base - timedelta(hours=1), None, base + timedelta(minutes=1),
                 base - timedelta(minutes=5), base + timedelta(hours=5)]
    for case, deadline in zip(made, deadlines, strict=True):
        Escalation.objects.filter(pk=case.pk).update(next_deadline_at=deadline)
    return made


def in_order(rows: list[tuple[Any, Any]], *, descending: bool = False) -> list[str]:
    """(deadline, id) pairs sorted as the paginator promises: by deadline (NULLs last), then id."""
    dated = sorted((r for r in rows if r[0] is not None), reverse=descending)
    undated = sorted((r for r in rows if r[0] is None), key=lambda r: r[1], reverse=descending)
    return [str(pk) for _, pk in dated + undated]


def bearer(demo: dict, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo['by_name'][username]['api_token']}"}


@pytest.mark.parametrize("limit", [1, 2, 3, 4])
def test_paging_the_api_list_returns_every_case_once_most_urgent_first_with_undated_ones_last(demo, cases, limit):
    expected = in_order(list(Escalation.objects.filter(tenant=demo["tenant_obj"]).values_list("next_deadline_at", "id")))

    seen, url, params = [], "/api/v1/escalations", {"limit": limit}
    while url:
        page = Client().get(url, params, headers=bearer(demo, "ceo")).json()
        seen += [e["id"] for e in page["results"]]
        url, params = page["next"], {}

    assert seen == expected
    assert len(expected) >= 9


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("as_rows", [False, True])
def test_the_paginator_walks_models_or_value_rows_either_way_round_without_repeats_or_gaps(demo, cases, descending,
                                                                                          as_rows):
    paginator = KeysetPagination(key="next_deadline_at", descending=descending)
    qs = Escalation.objects.filter(tenant=demo["tenant_obj"])
    expected = in_order(list(qs.values_list("next_deadline_at", "id")), descending=descending)
    source = qs.values("id", "next_deadline_at") if as_rows else qs

    seen: list[str] = []
    page = paginator.page_of(source, limit=2)
    while True:
        seen += [str(row["id"] if as_rows else row.pk) for row in page.items]
        if page.next_cursor is None:
            break
        page = paginator.page_of(source, cursor=page.next_cursor, limit=2)

    assert seen == expected


def test_a_next_page_is_asked_for_with_a_row_comparison_not_an_or(demo, cases):
    first = Client().get("/api/v1/escalations", {"limit": 2}, headers=bearer(demo, "ceo")).json()

    with CaptureQueriesContext(connection) as queries:
        Client().get(first["next"], headers=bearer(demo, "ceo"))

    paging = [q["sql"] for q in queries.captured_queries if ROW_COMPARISON.search(q["sql"])]
    assert len(paging) == 1
    where = paging[0].split(" WHERE ", 1)[1].split(" ORDER BY ", 1)[0]
    assert " OR " not in where


def test_the_dashboard_queue_pages_every_open_case_once_with_the_same_row_comparison(demo, cases, demo_actor):
    actor = demo_actor("ceo")
    queue = escalation_queue(actor=actor, filters=QueueFilters(scope="all"))
    expected = in_order(list(queue.values_list("next_deadline_at", "id")))

    seen: list[str] = []
    with CaptureQueriesContext(connection) as queries:
        page = paginate_queue(queue, size=2)
        while True:
            seen += [str(row["id"]) for row in page.items]
            if page.next_cursor is None:
                break
            page = paginate_queue(queue, cursor=page.next_cursor, size=2)

    assert seen == expected and len(seen) >= 9
    assert any(ROW_COMPARISON.search(q["sql"]) for q in queries.captured_queries)


def test_a_cursor_written_before_the_lists_shared_one_paginator_still_continues_after_its_row(demo, cases):
    ordered = in_order(list(Escalation.objects.filter(tenant=demo["tenant_obj"]).values_list("next_deadline_at", "id")))
    anchor = Escalation.objects.get(pk=ordered[0])
    assert anchor.next_deadline_at is not None
    # What escalations.selectors/trustguard.api.pagination wrote: [deadline isoformat, str(id)], base64url unpadded.
    legacy = base64.urlsafe_b64encode(json.dumps([anchor.next_deadline_at.isoformat(), str(anchor.pk)]).encode())

    page = Client().get("/api/v1/escalations", {"cursor": legacy.decode().rstrip("="), "limit": "100"},
                        headers=bearer(demo, "ceo")).json()

    assert [e["id"] for e in page["results"]] == ordered[1:]


def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("forged", [
    "garbage", cursor_of([None, 2**70]), cursor_of(["0001-01-01T00:00:00+01:00", 1]), cursor_of(["2026-01-01T00:00:00", 1]),
    cursor_of(["2026-01-01T00:00:00+00:00", True]), cursor_of(["2026-01-01T00:00:00+00:00", "x"]), cursor_of([1, 2, 3]),
    cursor_of({"a": 1}), cursor_of("2026"), cursor_of(["2026-02-30T00:00:00+00:00", 1]),
])
def test_a_forged_audit_cursor_is_a_400_naming_the_cursor(demo, forged):
    response = Client().get("/api/v1/audit", {"cursor": forged}, headers=bearer(demo, "ops"))

    assert response.status_code == 400
    assert "cursor" in response.json()["errors"]


def test_a_forged_cursor_never_reaches_the_database(demo):
    with CaptureQueriesContext(connection) as queries, pytest.raises(ValidationFailed):
        KeysetPagination(key="next_deadline_at").page_of(Escalation.objects.all(), cursor=cursor_of([None, "no"]), limit=5)

    assert queries.captured_queries == []


@pytest.mark.postgres
def test_postgresql_walks_the_queue_index_from_the_cursor(demo, cases):
    """The plan's Index Cond holds the row comparison: the index is entered at the cursor, not filtered row by row."""
    anchor = Escalation.objects.filter(tenant=demo["tenant_obj"], next_deadline_at__isnull=False).order_by("id").first()
    assert anchor is not None
    from django.db.models import F
    from django.db.models.fields.tuple_lookups import Tuple

    qs = (Escalation.objects.filter(tenant=demo["tenant_obj"], assigned_role="compliance_officer",
                                    status__in=["pending", "acknowledged", "deferred"])
          .filter(RowAfter(Tuple(F("next_deadline_at"), F("id")), (anchor.next_deadline_at, anchor.pk)))
          .order_by("next_deadline_at", "id")[:25])
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        # A handful of rows and no statistics: without these the planner may just read the table, which says
        # nothing about the 257,500-row queue of bench 3. With them, it must say how it enters an index.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Index Scan" in plan, plan
    assert re.search(r"Index Cond: .*ROW\(next_deadline_at, id\) > ROW\(", plan), plan
