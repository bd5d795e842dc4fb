"""Shared bench plumbing: Django setup on PostgreSQL, percentiles, result rows."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def setup_django() -> None:
    """Benchmarks run on PostgreSQL (DATABASE_URL) with the test settings' fast password hashing."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench needs PostgreSQL: set DATABASE_URL=postgres://... (a database it may fill)")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trustguard.settings_test")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


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
