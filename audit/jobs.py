"""The audit app's periodic jobs (beat schedule: trustguard.settings; run all: `manage.py run_sweeps`)."""

from __future__ import annotations

import logging

from django.db import transaction

from trustguard.jobs import periodic_job

from .alerts import chain_break_alert
from .models import AuditChainHead
from .retention import retention_apply
from .services import PLATFORM_CHAIN, SystemActor, audit_record
from .verification import ANCHOR_ACTION, all_chain_keys, verify_chains

logger = logging.getLogger("trustguard.audit")


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
    chains_anchor()
    return f"OK {total} events in {len(reports)} chains"


def chains_anchor() -> None:
    """Record every tenant chain's verified head on the platform chain, and in the log.

    A later verification checks that each chain still holds its anchored head, so cutting off a
    chain's tail and rewriting its head row to match is found; the log line (shipped off the
    machine) is the copy a database superuser cannot rewrite.
    """
    with transaction.atomic():
        heads = {h.chain_key: [h.last_seq, h.last_hash] for h in
                 AuditChainHead.objects.exclude(chain_key=PLATFORM_CHAIN).order_by("chain_key")}
        if not heads:
            return
        audit_record(tenant_id=None, action=ANCHOR_ACTION, actor=SystemActor("audit.verify_chains"),
                     target_type="audit_chain", target_id="*", details={"heads": heads})
        logger.info("audit chain heads anchored: %s", heads)
