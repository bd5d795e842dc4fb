"""`python -m bench [--quick] [--only N ...]`: run the benchmarks and print a table of figures and ratios.

Needs DATABASE_URL pointing at a PostgreSQL database the benchmarks may fill (not production).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from .common import setup_django

# Numbered as in the benchmarks issue.
BENCHES = {"1": "create", "2": "decide", "3": "queue", "4": "sweep_deadlines", "5": "relay", "6": "dashboard",
           "7": "sealing"}


# The Goals table of issue #25: (path, goal, [(bench, metric substring)]): a goal is met when every row it
# names was measured and met.
GOALS = [
    ("create, HTTP", ">= 50% of the one-INSERT floor", [("1 create", "create / one-INSERT floor")]),
    ("create, service", "CPU <= 1.0x viewflow start", [("1 create", "service CPU, ours / viewflow")]),
    ("decide", "p95 < 30 ms with 50 working approvers", [("2 decide", "50 approvers working")]),
    ("decide, service", "CPU <= 1.0x viewflow approve", [("2 decide", "service CPU, ours / viewflow")]),
    ("queue, product path (API)", "p95 < 2 ms; deep <= 1.2x first",
     [("3 queue", "API (GET /api/v1/escalations?mine=true): ")]),
    ("queue, product path (dashboard)", "p95 < 2 ms; deep <= 1.2x first", [("3 queue", "dashboard (GET /, Load more): ")]),
    ("sweep 100k incl. audit + outbox", "< 10 s", [("4 sweep", "sweep of 100,000")]),
    ("sweep vs raw SQL, same writes", ">= 60% of raw", [("4 sweep", "raw SQL time / sweep time")]),
    ("one tenant", "0 backends waiting on a tenant-wide lock during the create bench",
     [("1 create", "one tenant: backends waiting on a tenant-wide lock"),
      ("7 audit sealing", "one tenant, sealer: backends waiting on a tenant-wide lock")]),
    ("dashboard", ">= 40% of the signed-in baseline page", [("6 dashboard", "queue page / signed-in baseline page")]),
]


def platform_load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min) on {os.cpu_count()} CPUs"


def print_goals(rows: list, load: str) -> None:
    print(f"\nGoals of issue #25 ({load}; ratios are medians of interleaved rounds, see the rows above)")
    print("| path | goal | measured | verdict |")
    print("|---|---|---|---|")
    for path, goal, keys in GOALS:
        matched = [r for bench, metric in keys for r in rows if r.bench == bench and metric in r.metric and r.met is not None]
        if not matched:
            verdict, measured = "not run", ""
        else:
            verdict = "met" if all(r.met for r in matched) else "MISSED"
            measured = "; ".join(f"{r.display or f'{r.value:,.2f} {r.unit}'.strip()}" for r in matched)
        print(f"| {path} | {goal} | {measured} | {verdict} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data, few iterations: a smoke run")
    parser.add_argument("--only", action="append", default=[], help="run only bench N (repeatable)")
    args = parser.parse_args()
    setup_django()
    import importlib

    rows, plans = [], {}
    started = time.perf_counter()
    for number, module in BENCHES.items():
        if args.only and number not in args.only:
            continue
        bench_started = time.perf_counter()
        results, extra = importlib.import_module(f"bench.{module}").run(args.quick)
        print(f"bench {number} ({module}) took {time.perf_counter() - bench_started:.1f} s", flush=True)
        rows.extend(results)
        plans.update(extra)
    print(f"TrustGuard benchmarks ({'quick' if args.quick else 'full'}) on {platform.node()}, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| bench | metric | value | goal | verdict | notes |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row.row())
    print_goals(rows, platform_load())
    for name, plan in plans.items():
        print(f"\n-- EXPLAIN {name}\n{plan}")
    print(f"\ntotal bench time {time.perf_counter() - started:.1f} s")
    # The benches publish relay kicks with no worker to take them: empty the (scratch) broker queue,
    # so the next user of this Redis database does not inherit a backlog.
    from trustguard.celery import app

    app.control.purge()
    out = Path("var/bench")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps([r.__dict__ for r in rows], indent=2, default=str))


if __name__ == "__main__":
    main()
