"""The audit app's periodic jobs (beat schedule: trustguard.settings; run all: `manage.py run_sweeps`)."""

from __future__ import annotations

from trustguard.jobs import periodic_job

from .alerts import chain_break_alert
from .retention import retention_apply
from .verification import all_chain_keys, verify_chains


@periodic_job("audit.apply_retention", order=200)
def apply_retention() -> str:
    results = retention_apply()
    pruned = sum(r.pruned for r in results)
    refused = [r.chain_key for r in results if r.refused]
    summary = f"pruned {pruned} expired events from {sum(1 for r in results if r.pruned)} chains"
    return summary + (f"; REFUSED (broken chain): {', '.join(refused)}" if refused else "")


@periodic_job("audit.verify_chains", order=210)
def verify_audit_chains() -> str:
    reports = verify_chains(all_chain_keys())
    chain_break_alert(reports=reports, job="audit.verify_chains")
    broken = [r for r in reports if not r.ok]
    total = sum(r.events for r in reports)
    if broken:
        return f"BROKEN {len(broken)} of {len(reports)} chains: " + "; ".join(r.describe() for r in broken)
    return f"OK {total} events in {len(reports)} chains"
