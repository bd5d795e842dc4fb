"""Bench 1: create an escalation over HTTP (idempotency claim + escalation + audit + outbox, one commit)
against a bare Django JSON view on the same gunicorn, settings and middleware, with concurrent clients.

Goal: the create endpoint serves >= 50% of the bare view's requests per second.
Every create carries its own Idempotency-Key and order number, as a vendor's system would send them.
"""

from __future__ import annotations

import uuid

from .common import Result
from .http import Load, Request, Server, compare, gunicorn, json_body, load

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


def measure(server: Server, api_key: str, seconds: float) -> tuple[Load, Load]:
    def bare(client: int, seq: int) -> Request:
        return ("POST", "/bench/bare-json", {"Content-Type": "application/json"}, json_body(order(client, seq)))

    def create(client: int, seq: int) -> Request:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}",
                   "Idempotency-Key": str(uuid.uuid4())}
        return ("POST", "/api/v1/escalations", headers, json_body(order(client, seq)))

    load(server, bare, concurrency=CONCURRENCY, seconds=min(2.0, seconds)).require({201})  # warm every worker
    load(server, create, concurrency=CONCURRENCY, seconds=min(2.0, seconds)).require({201})
    return (load(server, bare, concurrency=CONCURRENCY, seconds=seconds).require({201}),
            load(server, create, concurrency=CONCURRENCY, seconds=seconds).require({201}))


def run(quick: bool) -> tuple[list[Result], dict[str, str]]:
    from escalations.demo import seed_demo

    api_key = seed_demo("bench-http")["api_keys"]["vendor"]
    with gunicorn() as server:
        bare, created = measure(server, api_key, 1.5 if quick else 15.0)
    results = compare("1 create", ("POST /api/v1/escalations", "JSON POST"), bare, created, GOAL_RATIO)
    results.insert(0, Result("1 create", "clients (closed loop)", CONCURRENCY, "", notes=["gunicorn.conf.py"]))
    return results, {}
