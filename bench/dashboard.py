"""Bench 6: the approver's queue page (GET /, signed in) against a signed-in baseline page on the same
gunicorn, settings and middleware: login required, the tenant resolved, the same base template (nav, account
menu, tenant name, badges' place) and a 25-row list, without the queue's own queries (bench/urls.py). The bare
25-row template of the old bench is measured too, for comparison. Rounds interleaved. And the page's query
count with 10 and with 10,000 queued items.

Goals: the queue page serves >= 40% of the signed-in baseline's requests per second, and the query count does
not grow with the queue (the same at 10 and 10,000 items).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .common import Result
from .http import Request, generator_row, gunicorn, interleaved, load, ratio_row, side_rows

CONCURRENCY = 16
GOAL_RATIO = 0.4
SIZES = (10, 10_000)
QUICK_SIZES = (10, 1_000)


def approver_with_queue(size: int) -> Any:
    """A compliance officer of tenant bench-dash-<size>, whose queue holds `size` pending escalations."""
    from django.utils import timezone

    from accounts.actors import Actor
    from accounts.models import Membership, Tenant, User
    from accounts.roles import Role
    from accounts.services import membership_add
    from escalations.demo import seed_demo
    from escalations.models import OPEN_STATUSES, Escalation, Policy

    from .seed import pending_escalations

    slug = f"bench-dash-{size}"
    seed_demo(slug)
    tenant = Tenant.objects.get(slug=slug)
    user = User.objects.filter(username=f"{slug}-officer").first() or User.objects.create_user(
        username=f"{slug}-officer", email=f"officer@{slug}.example")
    if not Membership.objects.filter(user=user, tenant=tenant, is_active=True).exists():
        membership_add(tenant=tenant, user=user, role=Role.COMPLIANCE_OFFICER, actor=Actor.for_system(tenant, "bench"))
    queued = Escalation.objects.filter(tenant=tenant, assigned_role=Role.COMPLIANCE_OFFICER,
                                       status__in=OPEN_STATUSES).count()
    if queued < size:
        now = timezone.now()
        pending_escalations(Policy.objects.get(tenant=tenant, type="SMR"), size - queued,
                            ack_due_at=now + timedelta(days=30), expires_at=now + timedelta(days=60),
                            entity_prefix=f"Q{int(now.timestamp())}")
    return user


def signed_in(user: Any) -> tuple[Any, str]:
    """A test client signed in as `user`, and its Cookie header (the session is stored server side, so
    gunicorn accepts the same cookie)."""
    from django.conf import settings
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return client, f"{name}={client.cookies[name].value}"


def query_count(client: Any) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get("/")  # warm: the first request of a process loads content types, permissions cache, ...
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/")
    if response.status_code != 200:
        raise SystemExit(f"queue page answered {response.status_code}")
    return len(captured.captured_queries)


def run(quick: bool) -> tuple[list[Result], dict[str, str]]:
    sizes = QUICK_SIZES if quick else SIZES
    users = {size: approver_with_queue(size) for size in sizes}
    counts, cookies = {}, {}
    for size, user in users.items():
        client, cookies[size] = signed_in(user)
        counts[size] = query_count(client)
    cookie = cookies[sizes[-1]]

    def bare(client: int, seq: int) -> Request:
        return ("GET", "/bench/bare-template", {}, None)

    def baseline(client: int, seq: int) -> Request:
        return ("GET", "/bench/signed-in-list", {"Cookie": cookie}, None)

    def queue(client: int, seq: int) -> Request:
        return ("GET", "/", {"Cookie": cookie}, None)

    rounds, seconds = 3, (1.0 if quick else 5.0)
    sides = {"GET / (my queue)": queue, "signed-in baseline page": baseline, "bare template (old baseline)": bare}
    with gunicorn() as server:
        for factory in sides.values():
            load(server, factory, concurrency=CONCURRENCY, seconds=1.0).require({200})
        runs = interleaved(server, sides, rounds=rounds, seconds=seconds, concurrency=CONCURRENCY,
                           expected=frozenset({200}))
    small, large = counts[sizes[0]], counts[sizes[-1]]
    rows = [Result("6 dashboard", "clients (closed loop)", CONCURRENCY, "",
                   notes=[f"queue of {sizes[-1]:,}", f"{rounds} interleaved rounds of {seconds:g} s per side"])]
    for name, side in runs.items():
        rows += side_rows("6 dashboard", name, side)
    return [
        *rows,
        ratio_row("6 dashboard", "queue page / signed-in baseline page", runs["GET / (my queue)"],
                  runs["signed-in baseline page"], GOAL_RATIO),
        ratio_row("6 dashboard", "queue page / bare template (the old bench's ratio)", runs["GET / (my queue)"],
                  runs["bare template (old baseline)"], None),
        generator_row("6 dashboard", runs),
        Result("6 dashboard", f"queries at {sizes[0]:,} / {sizes[-1]:,} queued items", large, "",
               "equal", small == large, display=f"{small} / {large}"),
    ], {}
