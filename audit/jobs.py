"""The audit app's periodic jobs: Celery tasks that beat runs (trustguard.periodic); `run_sweeps` runs them once."""

from __future__ import annotations

import logging
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from .alerts import chain_break_alert
from .anchors import anchor_write, anchors_check, anchors_read
from .models import AuditChainHead
from .retention import retention_apply
from .sealing import audit_seal_pending
from .services import PLATFORM_CHAIN, SystemActor, audit_record
from .verification import ANCHOR_ACTION, ChainReport, all_chain_keys, merge_reports, verify_chains

logger = logging.getLogger("trustguard.audit")


@shared_task(name="audit.apply_retention", ignore_result=True, acks_late=True)
def apply_retention() -> str:
    results = retention_apply()
    pruned = sum(r.pruned for r in results)
    refused = [r.chain_key for r in results if r.refused]
    summary = f"pruned {pruned} expired events from {sum(1 for r in results if r.pruned)} chains"
    return summary + (f"; REFUSED (broken chain): {', '.join(refused)}" if refused else "")


@shared_task(name="audit.seal_pending", ignore_result=True)
def seal_pending() -> str:
    """Seal the events requests wrote unsealed onto their chains (audit.sealing); every few seconds.

    A chain that stops at an event whose own seal fails raises the alarm (as a broken chain does; once an hour per
    chain, not every few seconds) and stays stopped there: its lag grows until someone looks (verify_audit names
    the event).
    """
    result = audit_seal_pending()
    reports = [ChainReport(key, 0, False, problem) for key, problem in (r.split(": ", 1) for r in result.refused)]
    fresh = [r for r in reports if cache.add(f"trustguard:audit-seal-refused:{r.chain_key}", 1, timeout=3600)]
    chain_break_alert(reports=fresh, job="audit.seal_pending")
    return result.describe()


@shared_task(name="audit.verify_chains", ignore_result=True, acks_late=True)
def verify_audit_chains() -> str:
    """Seal what is pending, verify every chain, and that the database still holds every head anchored outside it;
    then anchor again."""
    audit_seal_pending()
    reports = verify_chains(all_chain_keys())
    anchors, unreadable = anchors_read(settings.AUDIT_ANCHOR_DIR)
    reports = merge_reports(reports, anchors_check(anchors))
    reports += [ChainReport("anchors", 0, False, problem) for problem in unreadable]
    chain_break_alert(reports=reports, job="audit.verify_chains")
    broken = [r for r in reports if not r.ok]
    total = sum(r.events for r in reports)
    if broken:
        return f"BROKEN {len(broken)} of {len(reports)} chains: " + "; ".join(r.describe() for r in broken)
    anchor = chains_anchor()
    return f"OK {total} events in {len(reports)} chains" + (f"; anchored in {anchor}" if anchor else "")


def chains_anchor() -> Path | None:
    """Anchor every chain's verified head: on the platform chain, in the log, and in a signed file outside the database.

    A later verification checks that each chain still holds its anchored head, so cutting off a chain's tail and
    rewinding its head row to match is found. The file (audit.anchors, TRUSTGUARD_AUDIT_ANCHOR_DIR) is the copy
    nobody with only the database can rewrite; it holds the platform chain's head too, after this anchor's event
    (sealed here, in the same transaction, so that the head includes it).
    """
    with transaction.atomic():
        heads = {h.chain_key: [h.last_seq, h.last_hash] for h in
                 AuditChainHead.objects.exclude(chain_key=PLATFORM_CHAIN).order_by("chain_key")}
        if not heads:
            return None
        audit_record(tenant_id=None, action=ANCHOR_ACTION, actor=SystemActor("audit.verify_chains"),
                     target_type="audit_chain", target_id="*", details={"heads": heads})
        audit_seal_pending(chain_key=PLATFORM_CHAIN)
        everything = {h.chain_key: (h.last_seq, h.last_hash) for h in AuditChainHead.objects.all()}
        logger.info("audit chain heads anchored: %s", heads)
    # After the commit (outside any transaction, as beat runs it): the anchor names only committed heads.
    return anchor_write(everything)
