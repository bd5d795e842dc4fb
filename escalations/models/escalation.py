"""The escalation case, its statuses, and the one rule of who may see and act on which case."""

from __future__ import annotations

import functools
import operator
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

from accounts.delegations import delegations_held
from accounts.roles import Capability, Role
from approvals.selectors import open_requests_naming
from trustguard.ids import uuid7

from .policy import ExpiryReason, Policy, RiskLevel, Urgency

if TYPE_CHECKING:
    from accounts.actors import Actor


class EscalationStatus(models.TextChoices):
    PENDING = "pending"
    ACKNOWLEDGED = "acknowledged"
    APPROVED = "approved"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    EXECUTED = "executed"


OPEN_STATUSES = (EscalationStatus.PENDING, EscalationStatus.ACKNOWLEDGED, EscalationStatus.DEFERRED)
FINAL_STATUSES = (EscalationStatus.APPROVED, EscalationStatus.REJECTED, EscalationStatus.EXPIRED,
                  EscalationStatus.CANCELLED, EscalationStatus.EXECUTED)


def delegated_q(actor: Actor, *, at: datetime | None = None) -> models.Q | None:
    """The cases `actor` holds as a delegate now: assigned to an away delegator's own role, of a covered type
    (issue 19; accounts.delegations). The queue's "waiting for you" and visibility both use it."""
    parts = delegated_parts(actor, at=at)
    return functools.reduce(operator.or_, parts, models.Q(pk__in=[])) if parts else None


def delegated_parts(actor: Actor, *, at: datetime | None = None) -> list[models.Q]:
    """delegated_q as one Q per (delegation, role): each one range of the queue index (selectors.mine_branches)."""
    parts = []
    held = delegations_held(actor=actor, at=at)
    named = open_requests_naming(user_ids={d.delegator_id for d, _ in held}) if held else {}  # naming them (issue 22)
    for delegation, roles in held:
        covered = [models.Q(assigned_role=role) for role in sorted(roles)]
        if named.get(delegation.delegator_id):
            covered.append(models.Q(approval_id__in=named[delegation.delegator_id]))
        for part in covered:
            if delegation.escalation_types:
                part &= models.Q(type__in=list(delegation.escalation_types))
            parts.append(part)
    return parts


def named_q(actor: Actor) -> models.Q | None:
    """The cases whose open stage names `actor` (issue 22: a route may name people beside roles), or None."""
    if actor.user is None:
        return None
    # Read once per actor (a request's): the queue and its badge both ask. A list, not a subquery: the queue keeps
    # its (tenant, assigned_role, deadline) index, and most people are named nowhere.
    if "_named_requests" not in actor.__dict__:
        actor.__dict__["_named_requests"] = open_requests_naming(user_ids=[actor.user.pk]).get(actor.user.pk, [])
    requests = actor.__dict__["_named_requests"]
    return models.Q(approval_id__in=requests) if requests else None


class EscalationQuerySet(models.QuerySet["Escalation"]):
    """Who may see and who may act on which case: the one place the rule is written."""

    def visible_to(self, actor: Actor) -> EscalationQuerySet:
        """The cases `actor` may see, in its tenant (used by the API, the pages, reports, exports and locks).

        A tenant API key sees its own requests; a system job (and the tenant-wide reports and exports, which
        run as one once their caller holds audit.view or audit.export) the whole tenant; a person with
        escalation.view_all the whole tenant; with escalation.view, the cases assigned to one of their roles
        and their own requests; without either, none (the API answers that with a 403: selectors.can_view).
        """
        mine = self.filter(tenant=actor.tenant)
        if actor.api_key is not None:
            return mine.filter(requested_by_api_key=actor.api_key)
        if actor.user is None or actor.can(Capability.ESCALATION_VIEW_ALL):
            return mine
        # A person the open stage names sees the case, whatever their capabilities: the route asks them (issue 22).
        named = named_q(actor)
        if actor.can(Capability.ESCALATION_VIEW):
            # A delegate sees what they hold for someone away (issue 19), as that person would.
            held = delegated_q(actor)
            own = models.Q(assigned_role__in=sorted(actor.roles)) | models.Q(requested_by_user=actor.user)
            for extra in (held, named):
                own = own | extra if extra is not None else own
            return mine.filter(own)
        return mine.filter(named) if named is not None else mine.none()

    def actionable_by(self, actor: Actor) -> EscalationQuerySet:
        """The cases `actor` may name in an action (acknowledge, decide, cancel, a code, a report; 404 outside).

        A key is confined to its own requests; a person or a job to their tenant, so that a colleague of the
        wrong role gets the service's precise 403 (capability, assignment, requester) rather than a 404.
        """
        mine = self.filter(tenant=actor.tenant)
        if actor.api_key is not None:
            return mine.filter(requested_by_api_key=actor.api_key)
        return mine


class Escalation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # No index of their own: a lookup by tenant uses any of the (tenant, ...) indexes in Meta.indexes, and no
    # query filters by policy (policies are never deleted: the admin refuses; escalations PROTECT them).
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="escalations", db_index=False)
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="escalations", db_index=False)
    policy_version = models.PositiveIntegerField()
    # The policy as it was at creation: editing a policy never changes escalations in flight.
    policy_snapshot = models.JSONField()
    approval = models.OneToOneField("approvals.ApprovalRequest", on_delete=models.PROTECT, related_name="escalation")

    type = models.CharField(max_length=64)
    reason = models.TextField()
    source_system = models.CharField(max_length=100)
    source_entity_type = models.CharField(max_length=100)
    source_entity_id = models.CharField(max_length=200)
    source_url = models.URLField(max_length=500, blank=True)
    amount_minor = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    risk_level = models.CharField(max_length=8, choices=RiskLevel.choices)
    urgency = models.CharField(max_length=8, choices=Urgency.choices, default=Urgency.NORMAL)
    flags = models.JSONField(default=list, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    # A customer to keep informed ("your order is under review"), when the source gives one.
    contact = models.JSONField(default=dict, blank=True)

    # These three are indexed only where set (Meta.indexes): most rows have one of them empty.
    requested_by_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="+", db_index=False)
    requested_by_api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.PROTECT,
                                             related_name="+", db_index=False)
    requested_by_email = models.EmailField(blank=True)

    status = models.CharField(max_length=16, choices=EscalationStatus.choices, default=EscalationStatus.PENDING)
    current_stage = models.PositiveSmallIntegerField(default=0)
    assigned_role = models.CharField(max_length=32, choices=Role.choices)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    approvals_required = models.PositiveSmallIntegerField(default=0)
    approvals_received = models.PositiveSmallIntegerField(default=0)
    conditions = models.JSONField(default=list, blank=True)

    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+", db_index=False)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    ack_due_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    defer_until = models.DateTimeField(null=True, blank=True)
    deferred_at = models.DateTimeField(null=True, blank=True)
    # The deadline that matters most now; the queue's sort key (see escalations.services.deadlines).
    next_deadline_at = models.DateTimeField(null=True, blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    top_alerted_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    execution_result = models.JSONField(null=True, blank=True)
    # The content's revision: 1 at creation, +1 per amendment. One-time codes are bound to it
    # (escalations.services.content_hash), so a code issued for the old content never decides the new.
    revision = models.PositiveIntegerField(default=1, db_default=1)  # db_default: the previous release inserts too

    # Change management (escalations.schedule, escalations.obligations, escalations.templates).
    estimated_cost_minor = models.BigIntegerField(null=True, blank=True)
    estimated_cost_currency = models.CharField(max_length=3, blank=True, default="", db_default="")
    actual_cost_minor = models.BigIntegerField(null=True, blank=True)
    actual_cost_currency = models.CharField(max_length=3, blank=True, default="", db_default="")
    window_starts_at = models.DateTimeField(null=True, blank=True)
    window_ends_at = models.DateTimeField(null=True, blank=True)
    approval_expires_at = models.DateTimeField(null=True, blank=True)
    expiry_reason = models.CharField(max_length=16, choices=ExpiryReason.choices, blank=True, default="", db_default="")
    # The earliest due_at among the open conditions: the overdue sweep's claim column (null: none open).
    conditions_due_at = models.DateTimeField(null=True, blank=True)
    # {"slug", "name", "version", "pre_approved"}: the template version it was made from, as it was then.
    template = models.JSONField(null=True, blank=True)

    objects = EscalationQuerySet.as_manager()

    class Meta:
        ordering = ["next_deadline_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(escalation_level__lte=3), name="escalation_level_le_3"),
            models.CheckConstraint(condition=models.Q(amount_minor__isnull=True) | models.Q(amount_minor__gte=0),
                                   name="escalation_amount_non_negative"),
            models.CheckConstraint(
                condition=(models.Q(amount_minor__isnull=True) & models.Q(currency=""))
                | (models.Q(amount_minor__isnull=False) & ~models.Q(currency="")),
                name="escalation_amount_has_currency",
            ),
            models.CheckConstraint(condition=~models.Q(status="deferred") | models.Q(defer_until__isnull=False),
                                   name="escalation_deferred_has_until"),
            models.CheckConstraint(
                condition=models.Q(estimated_cost_minor__isnull=True, estimated_cost_currency="")
                | (models.Q(estimated_cost_minor__gte=0) & ~models.Q(estimated_cost_currency="")),
                name="escalation_estimated_cost_complete"),
            models.CheckConstraint(
                condition=models.Q(actual_cost_minor__isnull=True, actual_cost_currency="")
                | (models.Q(actual_cost_minor__gte=0) & ~models.Q(actual_cost_currency="")),
                name="escalation_actual_cost_complete"),
            models.CheckConstraint(
                condition=models.Q(window_starts_at__isnull=True, window_ends_at__isnull=True)
                | models.Q(window_ends_at__gt=models.F("window_starts_at")),
                name="escalation_window_ordered"),
        ]
        # Every index costs each UPDATE that is not HOT (the sweeps' re-escalation changes indexed columns, so
        # it never is) one more insertion: keep only indexes some query needs (docs/OPERATIONS.md "Throughput").
        indexes = [
            # The approver queue: open items of one role, most urgent first.
            models.Index(fields=["tenant", "assigned_role", "next_deadline_at", "id"], name="esc_queue_idx",
                         condition=models.Q(status__in=["pending", "acknowledged", "deferred"])),
            models.Index(fields=["tenant", "next_deadline_at", "id"], name="esc_tenant_deadline_idx"),
            models.Index(fields=["tenant", "status", "created_at"], name="esc_tenant_status_idx"),
            models.Index(fields=["tenant", "source_entity_id"], name="esc_source_entity_idx"),
            # Sweeps: each scans only the rows it may act on, in its claim order (deadline, id), so that
            # SELECT ... ORDER BY deadline, id LIMIT n FOR UPDATE SKIP LOCKED stops after n rows, unsorted.
            models.Index(fields=["ack_due_at", "id"], name="esc_ack_due_idx", condition=models.Q(status="pending")),
            models.Index(fields=["expires_at", "id"], name="esc_expiry_idx",
                         condition=models.Q(status__in=["pending", "acknowledged"])),
            models.Index(fields=["defer_until", "id"], name="esc_defer_idx", condition=models.Q(status="deferred")),
            models.Index(fields=["approval_expires_at", "id"], name="esc_approval_lapse_idx",
                         condition=models.Q(status="approved", approval_expires_at__isnull=False)),
            models.Index(fields=["conditions_due_at", "id"], name="esc_conditions_due_idx",
                         condition=models.Q(conditions_due_at__isnull=False)),
            # Foreign keys indexed where set: an API key's own requests, a person's own requests (the
            # escalation.view rule), and the PROTECT checks when a user or key row is deleted.
            models.Index(fields=["requested_by_api_key"], name="esc_requested_by_key_idx",
                         condition=models.Q(requested_by_api_key__isnull=False)),
            models.Index(fields=["requested_by_user"], name="esc_requested_by_user_idx",
                         condition=models.Q(requested_by_user__isnull=False)),
            models.Index(fields=["acknowledged_by"], name="esc_acknowledged_by_idx",
                         condition=models.Q(acknowledged_by__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.source_entity_id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES
