"""Append-only, hash-chained audit events.

Each tenant has its own chain (``chain_key``); events without a tenant go to the platform chain.
An event's hash is an HMAC, under a key held outside the database (audit.keys), of the previous hash and
the canonical JSON of the event, so altering, removing, reordering or forging any row is detectable
(``audit.verification``); anchors written outside the database (audit.anchors) catch a cut-off tail.

Events are written *unsealed* in the business transaction (``seq`` NULL, ``hash`` the event's own HMAC, no chain
lock) and sealed onto their chain afterwards, in batches, by the one sealer of that chain (audit.sealing), which
fills in ``seq``, ``prev_hash``, ``hash`` and ``key_id`` exactly once.

The database enforces append-only on both engines, PostgreSQL (pgtrigger triggers below) and SQLite
(SQLITE_TRIGGERS, the same rules): UPDATE is refused but for sealing an unsealed event (its seal columns filled
in, every other column unchanged; a sealed event never changes); DELETE only for sealed events that a retention
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
_NOT_PRUNED = ("OLD.seq IS NULL OR OLD.seq > COALESCE((SELECT MAX(c.seq) FROM audit_auditcheckpoint c "
               "WHERE c.chain_key = OLD.chain_key), 0)")
_DELETE_ONLY_PRUNED = f"""
    IF {_NOT_PRUNED} THEN
        RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation',
            MESSAGE = 'audit events are append-only: ' || OLD.chain_key || ' #'
                      || COALESCE(OLD.seq::text, '(unsealed)') || ' is not covered by a retention checkpoint';
    END IF;
    RETURN OLD;
"""

# The columns the sealer fills in, once (audit.sealing); every other column of an event never changes.
SEAL_COLUMNS = ("seq", "prev_hash", "hash", "key_id")
# PostgreSQL: an UPDATE may only seal an unsealed event. The whole row but the seal columns is compared (a record
# comparison, so a column added later is covered without touching this).
_SEAL_ONCE = f"""
    IF OLD.seq IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation',
            MESSAGE = 'audit events are append-only: ' || OLD.chain_key || ' #' || OLD.seq || ' is sealed';
    END IF;
    unsealed := NEW;
    {" ".join(f"unsealed.{c} := OLD.{c};" for c in SEAL_COLUMNS)}
    IF NEW.seq IS NULL OR NEW.hash = '' OR NEW.key_id = '' OR unsealed IS DISTINCT FROM OLD THEN
        RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation',
            MESSAGE = 'audit events are append-only: an unsealed event may only be sealed (seq, prev_hash, hash '
                      || 'and key_id filled in), nothing else of it changed';
    END IF;
    RETURN NEW;
"""


class AuditChainHead(models.Model):
    """The tip of one chain. The sealer locks this row (writers never do), so two sealers never fork a chain."""

    chain_key = models.CharField(max_length=64, primary_key=True)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")

    def __str__(self) -> str:
        return f"{self.chain_key}@{self.last_seq}"


class AuditEvent(models.Model):
    chain_key = models.CharField(max_length=64)
    # NULL until the sealer puts the event on its chain (audit.sealing); then the event's place on it, for good.
    seq = models.BigIntegerField(null=True, blank=True)
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
    # Unsealed: the key of the event's own seal (`hash`: HMAC of the event with seq null, no prev_hash), which the
    # sealer checks before it chains the event.
    # Sealed: the audit key that sealed the event (settings.AUDIT_KEYS): its hash is an HMAC under that key. Empty: an
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
            # The sealer's queue (and the sealing lag): only the few events not sealed yet.
            models.Index(fields=["chain_key", "id"], condition=models.Q(seq__isnull=True), name="audit_unsealed_idx"),
        ]
        triggers = [
            pgtrigger.Trigger(name="audit_event_seal_once", when=pgtrigger.Before, operation=pgtrigger.Update,
                              declare=[("unsealed", "audit_auditevent")], func=_SEAL_ONCE),
            pgtrigger.Trigger(name="audit_event_delete_pruned_only", when=pgtrigger.Before,
                              operation=pgtrigger.Delete, func=_DELETE_ONLY_PRUNED),
        ]

    def __str__(self) -> str:
        where = "unsealed" if self.seq is None else f"#{self.seq}"
        return f"{where} {self.action} {self.target_type}:{self.target_id}"


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
def _sqlite_seal_only() -> str:
    """SQLite: the UPDATE allowed (the trigger refuses every other): an unsealed event sealed, nothing else changed.
    SQLite has no record comparison: the columns are listed from the model (a new column joins the list; the
    trigger is re-installed by the migration that adds it)."""
    kept = [f.column for f in AuditEvent._meta.concrete_fields if f.column not in SEAL_COLUMNS]
    same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in kept)
    return f"OLD.seq IS NULL AND NEW.seq IS NOT NULL AND NEW.hash <> '' AND NEW.key_id <> '' AND {same}"


SQLITE_TRIGGERS = [
    sqlite_refusal("audit_auditevent", "UPDATE", "audit events are append-only: only an unsealed event may be sealed",
                   when=f"NOT ({_sqlite_seal_only()})"),
    sqlite_refusal("audit_auditevent", "DELETE", "audit events are append-only: not covered by a retention checkpoint",
                   when=_NOT_PRUNED),
    sqlite_refusal("audit_auditcheckpoint", "UPDATE", "audit checkpoints are append-only"),
    sqlite_refusal("audit_auditcheckpoint", "DELETE", "audit checkpoints are append-only"),
]
