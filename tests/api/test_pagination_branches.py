"""A queue over several index ranges (a person with two roles who also stands in for someone away) is paged one
range at a time and merged: every case once, in the order of the one query, on both engines; on PostgreSQL no
page is sorted. The audit list, newest first, walks its index too."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.actors import Actor
from accounts.delegations import DelegationInput, delegation_create
from accounts.models import User
from accounts.services import membership_add
from escalations.models import Escalation
from escalations.selectors import QueueFilters, escalation_list, escalation_queue, paginate_queue, queue_branches
from escalations.services import SourceRef, escalation_create

pytestmark = pytest.mark.django_db
TYPES = {"HIGH_VALUE", "VENDOR_FLAGGED", "SANCTIONS_MATCH", "HIGH_RISK_CDD", "SMR", "PROGRAM_APPROVAL",
         "OPERATION_CHANGE"}
# (role, type, deadline in minutes from a base or None, open): three ranges for sm, and cases that are not sm's.
CASES = [
    ("compliance_officer", "SMR", 0, True), ("compliance_officer", "SMR", 0, True), ("senior_manager", "SMR", 0, True),
    ("senior_manager", "SMR", -30, True), ("ceo", "HIGH_VALUE", 5, True), ("ceo", "HIGH_VALUE", 0, True),
    ("ceo", "VENDOR_FLAGGED", -60, True), ("compliance_officer", "SMR", None, True), ("ceo", "HIGH_VALUE", None, True),
    ("senior_manager", "SMR", 90, True), ("governing_body", "SMR", 1, True), ("compliance_officer", "SMR", None, False),
    ("senior_manager", "SMR", None, False), ("ceo", "HIGH_VALUE", None, False), ("compliance_officer", "SMR", 45, True),
]


@pytest.fixture
def sm(demo: dict, demo_actor: Any, vendor: Actor) -> Actor:
    """sm is a senior manager and a compliance officer, and stands in for the CEO (away) on high-value orders."""
    tenant = demo["tenant_obj"]
    user = User.objects.get(username="sm")
    membership_add(tenant=tenant, user=user, role="compliance_officer", actor=Actor.for_system(tenant, "test"))
    start = timezone.now()
    delegation_create(actor=demo_actor("ceo"), delegator=User.objects.get(username="ceo"), known_types=TYPES,
                      wanted=DelegationInput(delegate=user, starts_at=start, ends_at=start + timedelta(days=3),
                                             escalation_types=("HIGH_VALUE",)))
    base = timezone.now().replace(microsecond=0) + timedelta(hours=3)
    for i, (role, type_, minutes, is_open) in enumerate(CASES):
        case = escalation_create(actor=vendor, type="SMR", reason="Odd pattern", source=SourceRef("shop", "order", f"B-{i}"))
        Escalation.objects.filter(pk=case.pk).update(
            assigned_role=role, type=type_, status="pending" if is_open else "approved",
            next_deadline_at=None if minutes is None else base + timedelta(minutes=minutes))
    return demo_actor("sm")


def in_order(rows: list[tuple[Any, Any]]) -> list[str]:
    dated = sorted(r for r in rows if r[0] is not None)
    return [str(pk) for _, pk in dated + sorted((r for r in rows if r[0] is None), key=lambda r: r[1])]


@pytest.mark.parametrize("size", [1, 2, 3, 25])
def test_my_queue_over_two_roles_and_a_delegation_pages_every_case_once_in_the_queue_order(sm, size):
    queue = escalation_queue(actor=sm, filters=QueueFilters(scope="mine"))
    expected = in_order(list(queue.values_list("next_deadline_at", "id")))
    branches = queue_branches(actor=sm, mine=True)

    seen: list[str] = []
    page = paginate_queue(queue, size=size, branches=branches)
    while True:
        seen += [str(row["id"]) for row in page.items]
        if page.next_cursor is None:
            break
        page = paginate_queue(queue, cursor=page.next_cursor, size=size, branches=branches)

    assert len(branches) == 3  # compliance_officer, senior_manager, the CEO's high-value orders
    assert seen == expected
    assert len(expected) == 10  # not the governing body's, nor the CEO's flagged vendor, nor closed ones


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_the_api_list_of_mine_pages_open_and_closed_cases_once_undated_last(demo, sm, limit):
    expected = in_order(list(escalation_list(actor=sm, mine=True).values_list("next_deadline_at", "id")))
    token = demo["by_name"]["sm"]["api_token"]

    seen, url, params = [], "/api/v1/escalations", {"limit": limit, "mine": "true"}
    while url:
        page = Client().get(url, params, headers={"Authorization": f"Bearer {token}"}).json()
        seen += [e["id"] for e in page["results"]]
        url, params = page["next"], {}

    assert seen == expected
    assert len(expected) == 13


def test_the_dashboard_shows_my_queue_of_several_roles_in_order(sm, client):
    client.force_login(sm.user)
    queue = escalation_queue(actor=sm, filters=QueueFilters(scope="mine"))
    first = in_order(list(queue.values_list("next_deadline_at", "id")))[:3]

    html = client.get("/", {"scope": "mine"}).content.decode()

    positions = [html.find(f"/e/{pk}/") for pk in first]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)


def plans(queries: list[dict[str, Any]]) -> list[str]:
    """The EXPLAIN of every statement that read a page (the ones with a LIMIT), with reading the table, a bitmap and
    sorting off (a plan that cannot do without one still has it): a handful of rows would be read whole and sorted
    otherwise, which says nothing about a queue of 250,000."""
    out = []
    with connection.cursor() as cursor:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            cursor.execute(f"SET LOCAL {setting} = off")
        for query in queries:
            if " LIMIT " in query["sql"]:
                cursor.execute("EXPLAIN " + query["sql"])
                out.append("\n".join(row[0] for row in cursor.fetchall()))
    return out


@pytest.mark.postgres
def test_postgresql_reads_each_range_of_my_queue_from_the_index_in_order_without_a_sort(sm):
    queue = escalation_queue(actor=sm, filters=QueueFilters(scope="mine"))
    first = paginate_queue(queue, size=2, branches=queue_branches(actor=sm, mine=True))
    with CaptureQueriesContext(connection) as queries:
        paginate_queue(queue, cursor=first.next_cursor or "", size=2, branches=queue_branches(actor=sm, mine=True))
    with CaptureQueriesContext(connection) as one_query:  # what the queue cost before: an IN over the roles
        paginate_queue(queue, cursor=first.next_cursor or "", size=2)

    [plan] = plans(queries.captured_queries)  # one statement: the ranges' ids, then the page's rows by id
    ranges = plan.split("Append", 1)[1].split("->  Limit")[1:]
    assert len(ranges) >= 3, plan  # each range, and the undated rows of a range
    for scan in ranges:
        assert one_range_in_order(scan), plan
    # One query sorts the roles' rows, or walks the tenant's deadlines and filters out everybody else's.
    assert not all(one_range_in_order(plan) for plan in plans(one_query.captured_queries))


def one_range_in_order(plan: str) -> bool:
    return "Sort" not in plan and re.search(r"Index Cond: .*assigned_role\)::text = ", plan) is not None


@pytest.mark.postgres
def test_postgresql_pages_the_audit_list_newest_first_from_its_index_without_a_sort(demo):
    token = demo["by_name"]["ops"]["api_token"]
    first = Client().get("/api/v1/audit", {"limit": 2}, headers={"Authorization": f"Bearer {token}"}).json()
    assert first["next"]

    with CaptureQueriesContext(connection) as queries:
        Client().get(first["next"], headers={"Authorization": f"Bearer {token}"})

    [plan] = plans([q for q in queries.captured_queries if '"audit_auditevent"' in q["sql"].split(" WHERE ")[0]])
    assert "Sort" not in plan and "audit_tenant_created_idx" in plan, plan
