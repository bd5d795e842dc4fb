"""Shared bench plumbing: Django setup on PostgreSQL, percentiles, result rows."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit


def ensure_database(url: str) -> None:
    """Create the benchmark database if it does not exist yet (on the same server, via `postgres`)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    try:
        psycopg.connect(url, connect_timeout=5).close()
        return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise SystemExit(f"bench cannot reach PostgreSQL: {exc}") from None
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(migrate: bool = True) -> None:
    """Benchmarks run on PostgreSQL (DATABASE_URL, created and migrated if needed) and Redis (REDIS_URL),
    with the test settings' fast password hashing."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench needs PostgreSQL: set DATABASE_URL=postgres://... (a database it may fill)")
    if not os.environ.get("REDIS_URL", "").startswith("redis"):
        raise SystemExit("bench needs Redis (the production cache and broker): set REDIS_URL=redis://...")
    ensure_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")  # product + bench-only apps
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    from accounts.models import Tenant

    others = list(Tenant.objects.exclude(slug__startswith="bench").values_list("slug", flat=True)[:3])
    if others:  # the benches truncate and fill tables: never on a database with real tenants
        raise SystemExit(f"DATABASE_URL holds tenants that are not the bench's ({', '.join(others)}): "
                         "point it at a scratch database (make bench uses BENCH_DATABASE_URL)")


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank: what p% of samples stay under."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def timed(func: Callable[[], object], repeat: int) -> list[float]:
    """Wall time of `repeat` calls, in milliseconds."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        out.append((time.perf_counter() - start) * 1000)
    return out


@dataclass
class Result:
    bench: str
    metric: str
    value: float
    unit: str
    goal: str = ""
    met: bool | None = None
    notes: list[str] = field(default_factory=list)
    display: str = ""  # shown instead of value + unit (several figures in one cell)

    def row(self) -> str:
        verdict = "" if self.met is None else ("met" if self.met else "MISSED")
        value = self.display or f"{self.value:,.2f} {self.unit}".strip()
        return f"| {self.bench} | {self.metric} | {value} | {self.goal} | {verdict} | {'; '.join(self.notes)} |"


def latency_result(bench: str, metric: str, samples: list[float], goal: str = "",
                   met: bool | None = None, notes: list[str] | None = None) -> Result:
    """One row with p50 / p95 / p99 in ms (value = p95, the figure goals are usually about)."""
    p50, p95, p99 = (percentile(samples, q) for q in (50, 95, 99))
    return Result(bench, metric, p95, "ms", goal, met, notes or [f"{len(samples):,} samples"],
                  display=f"{p50:.1f} / {p95:.1f} / {p99:.1f} ms")


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50": percentile(samples, 50), "p95": percentile(samples, 95), "p99": percentile(samples, 99),
            "mean": statistics.fmean(samples)}
