"""Telling operators that a chain is broken: an ERROR log line, an event on the platform chain, an email."""

from __future__ import annotations

import logging

from django.core.mail import mail_admins
from django.db import transaction

from .actions import AuditAction
from .services import SystemActor, audit_record
from .verification import ChainReport

logger = logging.getLogger("trustguard.audit")


def chain_break_alert(*, reports: list[ChainReport], job: str) -> None:
    """Raise the alarm for broken chains (log, platform audit event, mail to settings.ADMINS after commit)."""
    broken = [r for r in reports if not r.ok]
    if not broken:
        return
    for report in broken:
        logger.error("audit chain broken: %s", report.describe())
    with transaction.atomic():
        audit_record(tenant_id=None, action=AuditAction.AUDIT_CHAIN_BROKEN, actor=SystemActor(job), target_type="audit_chain",
                     target_id=",".join(r.chain_key for r in broken)[:64],
                     details={"broken": [{"chain": r.chain_key, "event_id": r.event_id, "seq": r.seq,
                                          "problem": r.problem} for r in broken]})
        body = "\n".join(r.describe() for r in broken)
        transaction.on_commit(lambda: mail_admins(f"Audit chain broken ({len(broken)})",
                                                  body + "\n\nRun `manage.py verify_audit` for details.",
                                                  fail_silently=True))
