"""Bench 3: the approver queue at scale, timed on the product's own path: first page and a page 10,000 deep.

Nothing here writes the queue's SQL. The bench pages the big tenant's queue the way a person and a vendor do,
through the product: the API (`GET /api/v1/escalations?mine=true`, following its `next` links) and the
dashboard (`GET /`, following its "Load more" cursor), in this process with Django's test client. While it does,
it records the page query each path sends (connection.execute_wrapper), then times exactly those statements,
first and deep pages taking turns, and EXPLAINs them. Whatever paginator the product uses, this is its query.
The whole in-process request (API, first vs deep) is timed too, for the share the query is of it.

For reference, the old bench's hand-written row-comparison query, `(deadline, id) > (...)`, is timed as well.

Goal: p95 < 2 ms for the first and the deep page's query, and the deep page within 1.2x of the first.
"""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan

from .common import Result, latency_result, percentile, timed
from .seed import BIG_TENANT_SLUG, seed

PAGE = 25
DEEP = 10_000
QUICK_DEEP = 2_000
TABLE = "escalations_escalation"
Statement = tuple[str, Any]


def reference_queue(tenant_id: int, role: str) -> QuerySet:
    """The old bench's query (a row comparison the product did not send), kept as a reference point."""
    from escalations.models import OPEN_STATUSES, Escalation

    return (Escalation.objects.filter(tenant_id=tenant_id, assigned_role=role, status__in=OPEN_STATUSES)
            .order_by("next_deadline_at", "id")
            .only("id", "type", "status", "amount_minor", "currency", "next_deadline_at", "source_entity_id"))


@contextmanager
def page_queries() -> Iterator[list[Statement]]:
    """Record the statements that read a page of escalation rows (SELECT "escalations_escalation".... ORDER BY ...
    LIMIT; not the badge's count) while the block runs; the page's rows are the first such read."""
    seen: list[Statement] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        ordered = sql.rsplit("ORDER BY", 1)[-1] if "ORDER BY" in sql else ""
        if sql.lstrip().startswith(f'SELECT "{TABLE}".') and "LIMIT" in ordered and not many:
            seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield seen


def _runner(sql: str, params: Any) -> Callable[[], None]:
    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()

    return run


def explain(sql: str, params: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def approver(tenant: Any) -> tuple[Any, str]:
    """A compliance officer of the big tenant with a personal token (created once, reused)."""
    import base64
    import hashlib

    from accounts.actors import Actor
    from accounts.models import Membership, PersonalToken, User
    from accounts.roles import Role
    from accounts.services import TOKEN_PREFIX, membership_add, personal_token_create, secret_digest

    actor = Actor.for_system(tenant, "bench")
    username = f"{BIG_TENANT_SLUG}-officer"
    user = User.objects.filter(username=username).first() or User.objects.create_user(
        username=username, email=f"{username}@bench.example")
    if not Membership.objects.filter(user=user, tenant=tenant, is_active=True).exists():
        membership_add(tenant=tenant, user=user, role=Role.COMPLIANCE_OFFICER, actor=actor)
    token = TOKEN_PREFIX + base64.urlsafe_b64encode(hashlib.sha256(f"bench:{username}".encode()).digest()
                                                    ).decode().rstrip("=")
    if not PersonalToken.objects.filter(digest=secret_digest(token)).exists():
        personal_token_create(user=user, tenant=tenant, name="bench", actor=actor, secret=token)
    return user, token


def _path(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[-1].join(("/", "")) if "://" in url else url


def api_pages(client: Any, token: str, depth: int) -> tuple[str, str, Statement, Statement]:
    """The API's first page and the page DEEP rows in (reached by following `next`), and their page queries."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    first = f"/api/v1/escalations?mine=true&limit={PAGE}"
    url, rows = "/api/v1/escalations?mine=true&limit=100", 0
    while rows < depth:
        response = client.get(url, **headers)
        if response.status_code != 200:
            raise SystemExit(f"API list answered {response.status_code}: {response.content[:300]!r}")
        body = response.json()
        rows += len(body["results"])
        if not body["next"]:
            raise SystemExit(f"the queue ended after {rows} rows; bench 3 needs {depth:,} + {PAGE}")
        url = _path(body["next"])
    deep = url.replace("limit=100", f"limit={PAGE}")
    queries = []
    for page in (first, deep):
        with page_queries() as seen:
            assert client.get(page, **headers).status_code == 200
        if not seen:
            raise SystemExit("no page query on the escalations table recorded for the API list")
        queries.append(seen[0])
    return first, deep, queries[0], queries[1]


def dashboard_pages(client: Any, depth: int) -> tuple[Statement, Statement]:
    """The dashboard's first page and the page DEEP rows in ("Load more", htmx), and their page queries."""
    cursor_re = re.compile(r"cursor=([A-Za-z0-9_\-]+)")
    url, rows, cursor = "/", 0, ""
    while rows < depth:
        response = client.get(url, HTTP_HX_REQUEST="true")
        found = cursor_re.search(response.content.decode())
        if response.status_code != 200 or not found:
            raise SystemExit(f"dashboard queue answered {response.status_code} without a next cursor at {rows} rows")
        rows += PAGE
        cursor = found.group(1)
        url = f"/?cursor={cursor}"
    queries = []
    for page in ("/", url):
        with page_queries() as seen:
            assert client.get(page, HTTP_HX_REQUEST="true").status_code == 200
        if not seen:
            raise SystemExit("no page query on the escalations table recorded for the dashboard queue")
        queries.append(seen[0])
    return queries[0], queries[1]


def pair(first: Statement, deep: Statement, repeat: int) -> tuple[list[float], list[float]]:
    """First and deep page in turns, so both see the same moments of the machine."""
    run_first, run_deep = _runner(*first), _runner(*deep)
    timed(run_first, 5), timed(run_deep, 5)  # warm the cache: we compare plans, not disk
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeat):
        a += timed(run_first, 1)
        b += timed(run_deep, 1)
    return a, b


def verdicts(label: str, first: list[float], deep: list[float], depth: int) -> list[Result]:
    p95_first, p95_deep = percentile(first, 95), percentile(deep, 95)
    return [
        latency_result("3 queue", f"{label}: first page query", first, "p95 < 2 ms", p95_first < 2),
        latency_result("3 queue", f"{label}: page {depth:,} deep query", deep, "p95 < 2 ms", p95_deep < 2),
        Result("3 queue", f"{label}: deep / first (p95)", p95_deep / p95_first, "x", "<= 1.2x",
               p95_deep / p95_first <= 1.2),
    ]


def queue_scale(quick: bool) -> tuple[int, int]:
    """(escalations, open): 100k / 60k quick, 10M / 1M full, or BENCH_QUEUE_SCALE=total/open (e.g. 1000000/100000)
    to iterate on a plan at a size this machine seeds in a minute."""
    asked = os.environ.get("BENCH_QUEUE_SCALE", "")
    if asked:
        total, open_ = (int(part.replace("_", "")) for part in asked.split("/"))
        return total, open_
    return (100_000, 60_000) if quick else (10_000_000, 1_000_000)


def run(quick: bool) -> tuple[list[Result], dict[str, str]]:
    from django.test import Client, override_settings

    from accounts.models import Tenant

    total, open_ = queue_scale(quick)
    seconds, reused = seed(total, open_)
    tenant = Tenant.objects.get(slug=BIG_TENANT_SLUG)
    user, token = approver(tenant)
    repeat = 200 if quick else 500
    depth = QUICK_DEEP if quick else DEEP  # the quick run pages 2,000 rows in: a smoke run of the same path
    with override_settings(RATE_LIMIT_PER_MINUTE=0):  # the throttle is not what this bench measures
        client = Client(HTTP_HOST="localhost")
        first_url, deep_url, api_first, api_deep = api_pages(client, token, depth)
        client.force_login(user)
        dash_first, dash_deep = dashboard_pages(client, depth)
        floor = timed(_runner("SELECT 1", ()), repeat)  # the round trip itself: what no query can beat
        api = pair(api_first, api_deep, repeat)
        dash = pair(dash_first, dash_deep, repeat)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        request_first, request_deep = pair_requests(client, first_url, deep_url, headers, 30 if quick else 100)
    base = reference_queue(tenant.pk, "compliance_officer")
    anchor = base[depth - 1: depth][0]
    ref_first = base[:PAGE].query.sql_with_params()
    ref_deep = base.filter(TupleGreaterThan(Tuple(F("next_deadline_at"), F("id")),
                                            (anchor.next_deadline_at, anchor.id)))[:PAGE].query.sql_with_params()
    reference = pair(ref_first, ref_deep, repeat)
    scale = f"{total:,} escalations, {open_:,} open, 100 tenants"
    results = [
        Result("3 queue", "seeding (set-based, indexes after)", seconds, "s",
               notes=[scale + (" (seeded by an earlier run, reused)" if reused else "")]),
        latency_result("3 queue", "SELECT 1 round trip (floor)", floor),
        *verdicts("API (GET /api/v1/escalations?mine=true)", *api, depth),
        *verdicts("dashboard (GET /, Load more)", *dash, depth),
        latency_result("3 queue", "API request in process, first page", request_first, "info"),
        latency_result("3 queue", f"API request in process, page {depth:,} deep", request_deep, "info",
                       notes=[f"deep / first p50 {statistics.median(request_deep) / statistics.median(request_first):.2f}x"]),
        latency_result("3 queue", "reference: the old bench's row comparison, first page", reference[0], "reference"),
        latency_result("3 queue", f"reference: the old bench's row comparison, {depth:,} deep", reference[1],
                       "reference"),
    ]
    plans = {"API first page": explain(*api_first), f"API page {depth:,} deep": explain(*api_deep),
             "dashboard first page": explain(*dash_first), f"dashboard page {depth:,} deep": explain(*dash_deep)}
    return results, plans


def pair_requests(client: Any, first: str, deep: str, headers: dict[str, str], repeat: int) -> tuple[list[float], list[float]]:
    def get(url: str) -> Callable[[], None]:
        return lambda: client.get(url, **headers)

    return pair_callables(get(first), get(deep), repeat)


def pair_callables(a: Callable[[], None], b: Callable[[], None], repeat: int) -> tuple[list[float], list[float]]:
    timed(a, 3), timed(b, 3)
    out_a: list[float] = []
    out_b: list[float] = []
    for _ in range(repeat):
        out_a += timed(a, 1)
        out_b += timed(b, 1)
    return out_a, out_b
