"""A reusable decision engine: a request with ordered stages, and immutable decisions."""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models

from trustguard.db_protections import sqlite_refusal
from trustguard.ids import uuid7


class ApprovalRequest(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        APPROVED = "approved"
        REJECTED = "rejected"
        CANCELLED = "cancelled"

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    requester_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")
    requester_email = models.EmailField(blank=True)
    allow_self_approval = models.BooleanField(default=False)
    current_stage = models.PositiveSmallIntegerField(default=0)
    # Bumped when the request restarts (approval_restart, after an amendment): decisions of earlier rounds stay,
    # dismissed; only the current round's count (approvals.services.counts_now).
    # db_default: rows inserted by the release still running during a deploy (and by raw SQL) get round 1.
    round = models.PositiveSmallIntegerField(default=1, db_default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"approval request {self.pk} ({self.status})"


class ApprovalStage(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting"
        OPEN = "open"
        COMPLETE = "complete"
        REJECTED = "rejected"

    # Indexed by approval_stage_unique (request, index), whose prefix serves every lookup by request.
    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="stages", db_index=False)
    index = models.PositiveSmallIntegerField()
    # Roles whose members may decide at this stage; `assigned_role` is who is being asked now
    # (a re-escalation moves it up a ladder, and that role may then decide too).
    roles = models.JSONField(default=list)
    # People named on the route (issue 22), who may decide here whatever their roles: the policy's usernames,
    # resolved to the tenant's members when the request is created. Rows (not JSON) so that a person's queue is an
    # indexed lookup on every engine. Empty for most stages.
    people = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    # "" for a stage of named people only: no role is asked (and no ladder climbed).
    assigned_role = models.CharField(max_length=32)
    approvals_required = models.PositiveSmallIntegerField()
    approvals_received = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    opened_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request", "index"]
        constraints = [
            models.UniqueConstraint(fields=["request", "index"], name="approval_stage_unique"),
            models.CheckConstraint(condition=models.Q(approvals_received__lte=models.F("approvals_required"))
                                   | models.Q(approvals_required=0), name="approval_stage_no_overcount"),
        ]

    def __str__(self) -> str:
        return f"stage {self.index} ({self.assigned_role} {self.approvals_received}/{self.approvals_required})"

    @property
    def eligible_roles(self) -> list[str]:
        return list(dict.fromkeys([*self.roles, self.assigned_role]))


class Decision(models.Model):
    """Immutable once written (the database refuses UPDATE and DELETE: pgtrigger below, SQLITE_TRIGGERS)."""

    class Kind(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"
        DEFER = "defer"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="decisions")
    stage = models.PositiveSmallIntegerField()
    decision = models.CharField(max_length=8, choices=Kind.choices)
    justification = models.TextField()
    conditions = models.JSONField(default=list, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions")
    role = models.CharField(max_length=32)
    # Decided by a delegate standing in for this person (accounts.Delegation): the pair counts as one.
    # No index of its own: the one lookup (request, on_behalf_of, round) is the delegator constraint's unique index,
    # and a plain index would lock this big table while it builds (tests/test_migrations_online.py).
    on_behalf_of = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", db_index=False)
    self_approved = models.BooleanField(default=False)
    defer_until = models.DateTimeField(null=True, blank=True)
    round = models.PositiveSmallIntegerField(default=1, db_default=1, help_text="The request's round it was given in.")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["decided_at", "id"]
        constraints = [
            # Last line of defence for "one approval per person per request (per round), across stages".
            models.UniqueConstraint(fields=["request", "decided_by", "round"], condition=models.Q(decision="approve"),
                                    name="decision_one_approval_per_person_round"),
            # One approval per person counts the person a delegate stood in for too (approvals.services), per round.
            models.UniqueConstraint(fields=["request", "on_behalf_of", "round"],
                                    condition=models.Q(decision="approve", on_behalf_of__isnull=False),
                                    name="decision_one_approval_per_delegator_round"),
            models.CheckConstraint(condition=~models.Q(justification=""), name="decision_justification_not_blank"),
            models.CheckConstraint(condition=~models.Q(decision="defer") | models.Q(defer_until__isnull=False),
                                   name="decision_defer_has_until"),
        ]
        # A decision is evidence: the database itself refuses to change or remove it.
        triggers = [pgtrigger.Protect(name="decision_immutable", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.decision} by {self.decided_by_id} at stage {self.stage}"


# The same rule on SQLite (the embedded default), where pgtrigger does not apply (trustguard.db_protections).
SQLITE_TRIGGERS = [
    sqlite_refusal("approvals_decision", "UPDATE", "decisions are immutable"),
    sqlite_refusal("approvals_decision", "DELETE", "decisions are immutable"),
]
