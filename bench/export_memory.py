"""Does a streamed export stay in constant memory as the table grows? Prints the figures.

    DATABASE_URL=postgres://... .venv/bin/python -m bench.export_memory [--sizes 10000,50000,200000]

Bulk-creates escalations in a tenant named `bench` (kept between runs, topped up as needed), then,
for each size, runs one export in a fresh process (so peak RSS is that export's alone) and prints:
rows, bytes produced, seconds, peak Python allocations (tracemalloc) and the growth of peak RSS over
the process's start-up. Flat figures from 10k to 200k rows mean memory does not grow with rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trustguard.settings_test")

import django

django.setup()

from django.utils import timezone  # noqa: E402

from accounts.models import Tenant  # noqa: E402
from approvals.models import ApprovalRequest  # noqa: E402
from escalations.demo import seed_demo  # noqa: E402
from escalations.models import Escalation, Policy  # noqa: E402
from escalations.policies import policy_snapshot  # noqa: E402
from reports.exports import ExportFilters, export_queryset, stream_export, write_export  # noqa: E402

BATCH = 5000


def ensure_rows(total: int) -> Tenant:
    """Top the bench tenant up to `total` escalations (bulk_create: this is setup, not the subject)."""
    seed_demo("bench")
    tenant = Tenant.objects.get(slug="bench")
    policy = Policy.objects.get(tenant=tenant, type="SMR")
    snapshot = policy_snapshot(policy)
    have = Escalation.objects.filter(tenant=tenant).count()
    now = timezone.now()
    while have < total:
        n = min(BATCH, total - have)
        approvals = ApprovalRequest.objects.bulk_create([ApprovalRequest(tenant=tenant) for _ in range(n)])
        Escalation.objects.bulk_create([
            Escalation(tenant=tenant, policy=policy, policy_version=policy.version, policy_snapshot=snapshot,
                       approval=a, type="SMR", reason=f"=HYPERLINK(\"x\") bench row {have + i} " + "x" * 80,
                       source_system="bench", source_entity_type="order", source_entity_id=f"B-{have + i}",
                       amount_minor=1000 + i, currency="NGN", risk_level="medium", assigned_role="compliance_officer",
                       expires_at=now + timedelta(days=1), ack_due_at=now + timedelta(hours=4))
            for i, a in enumerate(approvals)])
        have += n
        print(f"  seeded {have}/{total}", file=sys.stderr)
    return tenant


def _peak_rss_mib() -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(limit: int, fmt: str, trace: bool) -> dict[str, Any]:
    """One export of the first `limit` rows (created up to the limit-th row), in this process."""
    import tracemalloc

    tenant = Tenant.objects.get(slug="bench")
    cutoff = (Escalation.objects.filter(tenant=tenant).order_by("created_at", "id")
              .values_list("created_at", flat=True)[limit - 1])
    filters = ExportFilters(created_before=cutoff + timedelta(microseconds=1))
    actual = export_queryset(dataset="escalations", tenant=tenant, filters=filters).count()
    rss_before = _peak_rss_mib()
    if trace:  # tracemalloc slows allocation several-fold: its runs' seconds are not comparable
        tracemalloc.start()
    started = time.perf_counter()
    size = 0
    if fmt == "xlsx":
        with tempfile.TemporaryFile() as sink:
            write_export(dataset="escalations", fmt=fmt, tenant=tenant, filters=filters, out=sink)
            size = sink.tell()
    else:
        for piece in stream_export(dataset="escalations", fmt=fmt, tenant=tenant, filters=filters):
            size += len(piece)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else float("nan")
    tracemalloc.stop()
    return {"rows": actual, "format": fmt, "bytes": size, "seconds": round(seconds, 2),
            "rows_per_second": round(actual / seconds), "tracemalloc_peak_mib": round(peak, 2),
            "peak_rss_before_mib": round(rss_before, 1), "peak_rss_after_mib": round(_peak_rss_mib(), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--formats", default="csv,json")
    parser.add_argument("--tracemalloc", action="store_true", help="also record the peak of Python allocations")
    parser.add_argument("--one", help="internal: measure one 'rows:format' in this process")
    args = parser.parse_args()
    if args.one:
        rows, fmt = args.one.split(":")
        print(json.dumps(measure(int(rows), fmt, args.tracemalloc)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    ensure_rows(max(sizes))
    print(f"{'format':<6} {'rows':>8} {'MiB out':>8} {'seconds':>8} {'rows/s':>7} {'py peak MiB':>12} "
          f"{'peak RSS MiB (before -> after)':>31}")
    for fmt in args.formats.split(","):
        for rows in sizes:
            command = [sys.executable, "-m", "bench.export_memory", "--one", f"{rows}:{fmt}"]
            out = subprocess.run(command + (["--tracemalloc"] if args.tracemalloc else []),
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            size = f"{r['bytes'] / 2**20:.1f}" if r["bytes"] else "-"
            print(f"{fmt:<6} {r['rows']:>8} {size:>8} {r['seconds']:>8} {r['rows_per_second']:>7} "
                  f"{r['tracemalloc_peak_mib']:>12} {r['peak_rss_before_mib']:>15} -> {r['peak_rss_after_mib']:<12}",
                  flush=True)


if __name__ == "__main__":
    main()
