"""Bench 3: the approver queue at scale — first page, a page 10,000 deep (keyset), and OFFSET for contrast.

Goal: p95 < 2 ms for the first page, and the deep page within 1.2x of the first.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import Tuple

from trustguard.api.pagination import RowAfter

from .common import Result, latency_result, percentile, timed
from .seed import BIG_TENANT_SLUG, seed

PAGE = 25
DEEP = 10_000


def queue(tenant_id: int, role: str) -> QuerySet:
    from escalations.models import OPEN_STATUSES, Escalation

    return (Escalation.objects.filter(tenant_id=tenant_id, assigned_role=role, status__in=OPEN_STATUSES)
            .order_by("next_deadline_at", "id")
            .only("id", "type", "status", "amount_minor", "currency", "next_deadline_at", "source_entity_id"))


def _sql(qs: QuerySet) -> tuple[str, tuple]:
    return qs.query.sql_with_params()


def _runner(sql: str, params: tuple):
    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()

    return run


def explain(sql: str, params: tuple) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def run(quick: bool) -> tuple[list[Result], dict[str, str]]:
    from accounts.models import Tenant

    total, open_ = (100_000, 60_000) if quick else (10_000_000, 1_000_000)
    seconds, reused = seed(total, open_)
    tenant = Tenant.objects.get(slug=BIG_TENANT_SLUG)
    base = queue(tenant.pk, "compliance_officer")
    anchor = base[DEEP - 1 : DEEP][0]  # the last row before the deep page: what a cursor points at
    first_sql = _sql(base[:PAGE])
    keyset = base.filter(RowAfter(Tuple(F("next_deadline_at"), F("id")), (anchor.next_deadline_at, anchor.id)))
    deep_sql = _sql(keyset[:PAGE])
    offset_sql = _sql(base[DEEP : DEEP + PAGE])
    repeat = 200 if quick else 500
    floor_sql = ("SELECT 1", ())
    for sql in (floor_sql, first_sql, deep_sql, offset_sql):  # warm the cache so we compare plans, not disk
        timed(_runner(*sql), 5)
    floor = timed(_runner(*floor_sql), repeat)  # the round trip itself: what no query can beat
    # The first and the deep page take turns, so both see the same moments of the machine: measured in two
    # blocks, a burst of other work during one block lands on one side only and reads as a difference.
    first: list[float] = []
    deep: list[float] = []
    run_first, run_deep = _runner(*first_sql), _runner(*deep_sql)
    for _ in range(repeat):
        first += timed(run_first, 1)
        deep += timed(run_deep, 1)
    offset = timed(_runner(*offset_sql), 10 if quick else 20)  # hundreds of ms each: a few tell enough
    p95_first, p95_deep = percentile(first, 95), percentile(deep, 95)
    scale = f"{total:,} escalations, {open_:,} open, 100 tenants"
    results = [
        Result("3 queue", "seeding (set-based, indexes after)", seconds, "s",
               notes=[scale + (" (seeded by an earlier run, reused)" if reused else "")]),
        latency_result("3 queue", "SELECT 1 round trip (floor)", floor),
        latency_result("3 queue", "first page SQL", first, "p95 < 2 ms", p95_first < 2),
        latency_result("3 queue", f"page {DEEP:,} deep (keyset) SQL", deep, "p95 < 2 ms", p95_deep < 2),
        Result("3 queue", "deep / first (p95)", p95_deep / p95_first, "x", "<= 1.2x", p95_deep / p95_first <= 1.2),
        latency_result("3 queue", f"page {DEEP:,} deep with OFFSET SQL", offset, "contrast"),
    ]
    plans = {"first page": explain(*first_sql), "deep page (keyset)": explain(*deep_sql),
             "deep page (OFFSET)": explain(*offset_sql)}
    return results, plans
