"""`python -m bench [--quick] [--only N ...]`: run the benchmarks and print a table of figures and ratios.

Needs DATABASE_URL pointing at a PostgreSQL database the benchmarks may fill (not production).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from .common import setup_django

# Numbered as in the benchmarks issue.
BENCHES = {"1": "create", "2": "decide", "3": "queue", "4": "sweep_deadlines", "5": "relay", "6": "dashboard"}


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
