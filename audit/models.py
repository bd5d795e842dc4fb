"""Append-only, hash-chained audit events.

Each tenant has its own chain (``chain_key``); events without a tenant go to the platform chain.
An event's hash is an HMAC, under a key held outside the database (audit.keys), of the previous hash and
the canonical JSON of the event, so altering, removing, reordering or forging any row is detectable
(``audit.verification``); anchors written outside the database (audit.anchors) catch a cut-off tail.

The database enforces append-only on both engines, PostgreSQL (pgtrigger triggers below) and SQLite
(SQLITE_TRIGGERS, the same rules): UPDATE is always refused; DELETE only for events that a retention
checkpoint already covers, which only ``audit.retention`` writes, signed. trustguard.db_protections keeps
them installed after every migration and its system check refuses to start without them.
"""

from __future__ import annotations

import pgtrigger
from django.db import models

from trustguard.db_protections import sqlite_refusal

# The one way to delete audit events: retention first writes a signed checkpoint covering them
# (in the same transaction), then deletes. Anyone else's DELETE finds no checkpoint and fails.
# (PostgreSQL allows no subquery in a trigger's WHEN clause, hence the check inside the function; SQLite
# does, and its trigger below uses the same condition as its WHEN. No % in the SQL, which would be read
# as a query placeholder on the way to the database.)
_NOT_PRUNED = "OLD.seq > COALESCE((SELECT MAX(c.seq) FROM audit_auditcheckpoint c WHERE c.chain_key = OLD.chain_key), 0)"
_DELETE_ONLY_PRUNED = f"""
    IF {_NOT_PRUNED} THEN
        RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation',
            MESSAGE = 'audit events are append-only: ' || OLD.chain_key || ' #' || OLD.seq
                      || ' is not covered by a retention checkpoint';
    END IF;
    RETURN OLD;
"""


class AuditChainHead(models.Model):
    """The tip of one chain. Writers lock this row, so concurrent writers never fork a chain."""

    chain_key = models.CharField(max_length=64, primary_key=True)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")

    def __str__(self) -> str:
        return f"{self.chain_key}@{self.last_seq}"


class AuditEvent(models.Model):
    chain_key = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    # Indexes cost every insert (the sweeps write thousands per second): tenant is served by the (tenant, ...)
    # indexes below, and action by a plain index (no LIKE 'prefix%' query needs the text_pattern_ops twin that
    # db_index=True would add).
    tenant = models.ForeignKey("accounts.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                               db_index=False)
    action = models.CharField(max_length=64)
    actor_type = models.CharField(max_length=16)  # user | api_key | system
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=255, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField()
    # The audit key that sealed the event (settings.AUDIT_KEYS): its hash is an HMAC under that key. Empty: an
    # event written before the chain was keyed (plain SHA-256), accepted only before a chain's first keyed event.
    key_id = models.CharField(max_length=32, blank=True, default="")
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["chain_key", "seq"]
        constraints = [models.UniqueConstraint(fields=["chain_key", "seq"], name="audit_event_chain_seq_unique")]
        indexes = [
            # GET /audit: one tenant's events, newest first, cursor on (created_at, id).
            models.Index(fields=["tenant", "-created_at", "-id"], name="audit_tenant_created_idx"),
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            models.Index(fields=["tenant", "actor_type", "actor_id"], name="audit_actor_idx"),
            # The admin's action filter and the platform chain's anchors (verification). Migration 0004 renames
            # the index db_index=True made instead of building it again (the table is large and append-only).
            models.Index(fields=["action"], name="audit_action_idx"),
        ]
        triggers = [
            pgtrigger.Protect(name="audit_event_no_update", operation=pgtrigger.Update),
            pgtrigger.Trigger(name="audit_event_delete_pruned_only", when=pgtrigger.Before,
                              operation=pgtrigger.Delete, func=_DELETE_ONLY_PRUNED),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_type}:{self.target_id}"


class AuditCheckpoint(models.Model):
    """Where a chain now starts after retention pruned its prefix: the last pruned seq and hash.

    Signed with a key derived from SECRET_KEY, so a forged checkpoint (to hide a deleted prefix)
    fails verification. Append-only too; the newest (highest seq) checkpoint of a chain counts.
    """

    chain_key = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    pruned_count = models.BigIntegerField()
    created_at = models.DateTimeField()
    signature = models.CharField(max_length=64)

    class Meta:
        ordering = ["chain_key", "seq"]
        constraints = [models.UniqueConstraint(fields=["chain_key", "seq"], name="audit_checkpoint_chain_seq_unique")]
        triggers = [
            pgtrigger.Protect(name="audit_checkpoint_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.chain_key} pruned through #{self.seq}"


# The same rules on SQLite (the embedded default), where pgtrigger does not apply. Declared to
# trustguard.db_protections in AuditConfig.ready(); the migrations that first installed them hold frozen copies.
SQLITE_TRIGGERS = [
    sqlite_refusal("audit_auditevent", "UPDATE", "audit events are append-only"),
    sqlite_refusal("audit_auditevent", "DELETE", "audit events are append-only: not covered by a retention checkpoint",
                   when=_NOT_PRUNED),
    sqlite_refusal("audit_auditcheckpoint", "UPDATE", "audit checkpoints are append-only"),
    sqlite_refusal("audit_auditcheckpoint", "DELETE", "audit checkpoints are append-only"),
]
