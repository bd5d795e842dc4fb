"""Bench 1: create an escalation over HTTP (idempotency claim + escalation + audit + outbox, one commit)
against a bare Django JSON view on the same gunicorn, settings and middleware, with concurrent clients.

Goal: the create endpoint serves >= 50% of the bare view's requests per second.
Every create carries its own Idempotency-Key and order number, as a vendor's system would send them.
"""

from __future__ import annotations

import uuid

from .common import Result, latency_result
from .http import Load, Request, RequestFactory, Server, compare, gunicorn, json_body, load

CONCURRENCY = 16
GOAL_RATIO = 0.5


def order(client: int, seq: int) -> dict[str, object]:
    return {
        "reason": "Order above the NGN 1,000,000 threshold",
        "source": {"system": "shop", "entity_type": "order", "entity_id": f"ORD-{client}-{seq}-{uuid.uuid4().hex[:8]}",
                   "url": "https://shop.example/orders/1001"},
        "amount": {"value_minor": 250_000_000, "currency": "NGN"},
        "urgency": "high",
        "payload": {"customer": "C-77", "items": 3},
        "requested_by": "buyer@shop.example",
    }


def measure(server: Server, api_keys: list[str], seconds: float) -> tuple[Load, Load, Load]:
    """The bare view, then creates by one vendor of one tenant, then by one vendor in each of
    CONCURRENCY tenants (the per-tenant audit chain lock is then never shared)."""
    def bare(client: int, seq: int) -> Request:
        return ("POST", "/bench/bare-json", {"Content-Type": "application/json"}, json_body(order(client, seq)))

    def creator(keys: list[str]) -> RequestFactory:
        def create(client: int, seq: int) -> Request:
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {keys[client % len(keys)]}",
                       "Idempotency-Key": str(uuid.uuid4())}
            return ("POST", "/api/v1/escalations", headers, json_body(order(client, seq)))

        return create

    load(server, bare, concurrency=CONCURRENCY, seconds=min(2.0, seconds)).require({201})  # warm every worker
    load(server, creator(api_keys), concurrency=CONCURRENCY, seconds=min(2.0, seconds)).require({201})
    return (load(server, bare, concurrency=CONCURRENCY, seconds=seconds).require({201}),
            load(server, creator(api_keys[:1]), concurrency=CONCURRENCY, seconds=seconds).require({201}),
            load(server, creator(api_keys), concurrency=CONCURRENCY, seconds=seconds).require({201}))


def run(quick: bool) -> tuple[list[Result], dict[str, str]]:
    from escalations.demo import seed_demo

    tenants = 4 if quick else CONCURRENCY
    api_keys = [seed_demo(f"bench-http-{i:02d}")["api_keys"]["vendor"] for i in range(tenants)]
    with gunicorn() as server:
        bare, created, spread = measure(server, api_keys, 1.5 if quick else 15.0)
    results = compare("1 create", ("POST /api/v1/escalations", "JSON POST"), bare, created, GOAL_RATIO)
    results.insert(0, Result("1 create", "clients (closed loop)", CONCURRENCY, "",
                             notes=["gunicorn.conf.py", "one vendor key of one tenant"]))
    results += [Result("1 create", f"same, clients spread over {tenants} tenants req/s", spread.rps, "/s",
                       notes=["fewer clients per audit chain"]),
                latency_result("1 create", f"same, {tenants} tenants p50 / p95 / p99", spread.latencies_ms)]
    return results, {}
