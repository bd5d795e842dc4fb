"""A case's conversation and the requester's amendments: immutable rows (pgtrigger on PostgreSQL,
SQLITE_TRIGGERS on SQLite)."""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models

from trustguard.db_protections import sqlite_refusal
from trustguard.ids import uuid7

from .escalation import Escalation


class Comment(models.Model):
    """One message of a case's conversation. Immutable (the database refuses UPDATE and DELETE): an edit is a
    new row that `replaces` the old one. The body is personal data: sealed at rest (privacy.vault.seal_note)."""

    class Kind(models.TextChoices):
        COMMENT = "comment"
        QUESTION = "question"  # a question to the requester: the case awaits the requester until they answer

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    escalation = models.ForeignKey(Escalation, on_delete=models.PROTECT, related_name="comments", db_index=False)
    author_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    author_api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")
    by_requester = models.BooleanField(default=False)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.COMMENT)
    body = models.JSONField()  # {"$sealed": ...}
    mentions = models.JSONField(default=list, blank=True)  # user ids of the tenant's people named with @username
    replaces = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["escalation", "created_at", "id"], name="comment_case_idx")]
        constraints = [
            # The requester known only by email (escalations.requester_status) answers through their status link:
            # no user, no key, by_requester.
            models.CheckConstraint(condition=models.Q(author_user__isnull=False) | models.Q(author_api_key__isnull=False)
                                   | models.Q(by_requester=True), name="comment_has_author"),
        ]
        triggers = [pgtrigger.Protect(name="comment_immutable", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} on {self.escalation_id}"  # never the body: it is personal data


class Amendment(models.Model):
    """The requester changed the case: what changed (before/after), why, and what it undid. Immutable."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    escalation = models.ForeignKey(Escalation, on_delete=models.PROTECT, related_name="amendments", db_index=False)
    revision = models.PositiveIntegerField(help_text="The escalation's revision this amendment produced.")
    author_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    author_api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")
    justification = models.TextField()
    changes = models.JSONField()  # {field: {"before": ..., "after": ...}} (sealed payload values stay sealed)
    dismissed_decisions = models.JSONField(default=list, blank=True)  # ids of the approvals it dismissed
    policy_version_before = models.PositiveIntegerField()
    policy_version_after = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["escalation", "revision"], name="amendment_revision_unique"),
            models.CheckConstraint(condition=~models.Q(justification=""), name="amendment_justification_not_blank"),
        ]
        triggers = [pgtrigger.Protect(name="amendment_immutable", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"amendment {self.revision} of {self.escalation_id}"


# The same rules on SQLite (the embedded default), where pgtrigger does not apply (trustguard.db_protections).
SQLITE_TRIGGERS = [
    sqlite_refusal("escalations_comment", "UPDATE", "comments are immutable"),
    sqlite_refusal("escalations_comment", "DELETE", "comments are immutable"),
    sqlite_refusal("escalations_amendment", "UPDATE", "amendments are immutable"),
    sqlite_refusal("escalations_amendment", "DELETE", "amendments are immutable"),
]
