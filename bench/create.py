"""Bench 1: create an escalation over HTTP (idempotency claim + escalation + audit + outbox), against three
baselines on the same gunicorn, settings and middleware, measured in the same run, rounds interleaved:

- the one-INSERT floor: a view that parses the body, does one INSERT into its own scratch table and COMMITs
  (what a write endpoint cannot go below on this server);
- the DRF-create floor: a DRF ModelSerializer create of the same body into bench.floor's table, no auth;
- the bare view: parses the body and writes nothing (the old bench's only baseline).

Goal: the create endpoint serves >= 50% of the one-INSERT floor's requests per second (median of the rounds'
ratios). Every create carries its own Idempotency-Key and order number, as a vendor's system would send them.

At service level, in this process: escalation_create() against django-viewflow starting a process with one
human task (bench/floor/flows.py); goal: our CPU per call <= 1.0x viewflow's.
"""

from __future__ import annotations

import uuid
from typing import Any

from .common import Result
from .http import (
    Load,
    LockWaits,
    Request,
    RequestFactory,
    Server,
    generator_row,
    gunicorn,
    interleaved,
    json_body,
    load,
    lock_waits,
    ratio_row,
    side_rows,
)
from .service import count_statements, interleaved_calls, service_rows

CONCURRENCY = 16
GOAL_RATIO = 0.5
BENCH = "1 create"
PRODUCT = "POST /api/v1/escalations"
SIDES = (PRODUCT, "one-INSERT floor", "DRF-create floor", "bare view")


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


def _post(path: str) -> RequestFactory:
    def post(client: int, seq: int) -> Request:
        return ("POST", path, {"Content-Type": "application/json"}, json_body(order(client, seq)))

    return post


def creator(keys: list[str]) -> RequestFactory:
    def create(client: int, seq: int) -> Request:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {keys[client % len(keys)]}",
                   "Idempotency-Key": str(uuid.uuid4())}
        return ("POST", "/api/v1/escalations", headers, json_body(order(client, seq)))

    return create


def scratch_table() -> None:
    from django.db import connection

    from .urls import INSERT_FLOOR_TABLE

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {INSERT_FLOOR_TABLE} "
                       "(id bigserial PRIMARY KEY, entity_id text NOT NULL, body jsonb NOT NULL, "
                       "created_at timestamptz NOT NULL DEFAULT now())")
        cursor.execute(f"TRUNCATE {INSERT_FLOOR_TABLE}")
        cursor.execute("TRUNCATE bench_floor_floorescalation")


def measure(server: Server, api_keys: list[str], *, rounds: int,
            seconds: float) -> tuple[dict[str, list[Load]], Load, LockWaits]:
    """The interleaved rounds; then, with the lock sampler running (its queries would otherwise sit in the
    ratios' rounds), one more round of creates by the one vendor key; then clients spread over tenants."""
    sides = {PRODUCT: creator(api_keys[:1]), "one-INSERT floor": _post("/bench/insert-floor"),
             "DRF-create floor": _post("/bench/drf-create"), "bare view": _post("/bench/bare-json")}
    for factory in sides.values():  # warm every worker
        load(server, factory, concurrency=CONCURRENCY, seconds=min(1.0, seconds / 2)).require({201})
    runs = interleaved(server, sides, rounds=rounds, seconds=seconds, concurrency=CONCURRENCY,
                       expected=frozenset({201}))
    with lock_waits() as waits:
        load(server, creator(api_keys[:1]), concurrency=CONCURRENCY, seconds=seconds).require({201})
    spread_run = load(server, creator(api_keys), concurrency=CONCURRENCY, seconds=seconds).require({201})
    return runs, spread_run, waits


def service_level(api_key_tenant: str, *, rounds: int, per_round: int) -> list[Result]:
    from django.contrib.auth import get_user_model

    from accounts.actors import Actor
    from accounts.models import ApiKey
    from escalations.services import Money, SourceRef, escalation_create

    from .floor.flows import viewflow_start

    key = ApiKey.objects.select_related("tenant").get(tenant__slug=api_key_tenant, name="vendor")
    owner, _ = get_user_model().objects.get_or_create(username="bench-viewflow-owner")
    stamp = uuid.uuid4().hex[:8]
    body: dict[str, Any] = order(0, 0)

    def ours(i: int) -> object:
        # As the API view calls it: a fresh Actor per request, the key in hand (looked up by authentication).
        return escalation_create(
            actor=Actor(tenant=key.tenant, api_key=key), reason=str(body["reason"]),
            source=SourceRef(system="shop", entity_type="order", entity_id=f"SVC-{stamp}-{i}",
                             url="https://shop.example/orders/1001"),
            amount=Money(250_000_000, "NGN"), urgency="high", payload={"customer": "C-77", "items": 3},
            requested_by="buyer@shop.example")

    def theirs(i: int) -> object:
        return viewflow_start(owner=owner, data={**body, "source": {**body["source"],  # type: ignore[dict-item]
                                                                    "entity_id": f"VF-{stamp}-{i}"}})

    ours(-1), theirs(-1)  # warm both paths (first-call caches, prepared imports)
    statements = [count_statements(lambda: ours(-2)), count_statements(lambda: theirs(-2))]
    runs = interleaved_calls({"escalation_create()": ours, "viewflow start (one human task)": theirs},
                             rounds=rounds, per_round=per_round)
    return [*service_rows(BENCH, "create", "escalation_create()", "viewflow start (one human task)", runs, per_round),
            Result(BENCH, "SQL statements per call: escalation_create() / viewflow start", statements[0], "",
                   display=f"{statements[0]} / {statements[1]}",
                   notes=["CaptureQueriesContext; COPY (outbox, audit) not counted"])]


def run(quick: bool) -> tuple[list[Result], dict[str, str]]:
    from escalations.demo import seed_demo

    tenants = 4 if quick else CONCURRENCY
    api_keys = [seed_demo(f"bench-http-{i:02d}")["api_keys"]["vendor"] for i in range(tenants)]
    scratch_table()
    rounds, seconds = 3, (1.0 if quick else 5.0)
    with gunicorn() as server:
        runs, spread_run, waits = measure(server, api_keys, rounds=rounds, seconds=seconds)
    results = [Result(BENCH, "clients (closed loop)", CONCURRENCY, "",
                      notes=["gunicorn.conf.py", "one vendor key of one tenant",
                             f"{rounds} interleaved rounds of {seconds:g} s per side"])]
    for name in SIDES:
        results += side_rows(BENCH, name, runs[name])
    results += [
        ratio_row(BENCH, "create / one-INSERT floor", runs[PRODUCT], runs["one-INSERT floor"], GOAL_RATIO),
        ratio_row(BENCH, "create / DRF-create floor", runs[PRODUCT], runs["DRF-create floor"], None),
        ratio_row(BENCH, "create / bare view (the old bench's ratio)", runs[PRODUCT], runs["bare view"], None),
        ratio_row(BENCH, "one-INSERT floor / bare view", runs["one-INSERT floor"], runs["bare view"], None),
        generator_row(BENCH, runs),
        Result(BENCH, f"same, clients spread over {tenants} tenants req/s", spread_run.rps, "/s",
               notes=["fewer clients per audit chain; one round"]),
        Result(BENCH, "one tenant: backends waiting on a tenant-wide lock (max over samples)",
               max(waits.tenant_wide, default=0), "", "0", bool(waits.samples) and max(waits.tenant_wide) == 0,
               notes=[waits.summary()]),
    ]
    results += service_level("bench-http-00", rounds=rounds, per_round=10 if quick else 100)
    return results, {}
