"""Policies, trigger rules and the escalation case."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pgtrigger
from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from accounts.config_queryset import ConfigQuerySet
from accounts.delegations import delegations_held
from accounts.roles import Capability, Role
from trustguard.db_protections import sqlite_refusal
from trustguard.ids import uuid7

if TYPE_CHECKING:
    from accounts.actors import Actor


class RiskLevel(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Urgency(models.TextChoices):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class ExpiryOutcome(models.TextChoices):
    EXPIRE = "expire"
    REJECT = "reject"


DEFAULT_MAX_DEFERRAL_SECONDS = 30 * 24 * 3600
DEFAULT_MAX_WINDOW_SECONDS = 30 * 24 * 3600
DEFAULT_CONDITION_DUE_SECONDS = 7 * 24 * 3600


class ExpiryReason(models.TextChoices):
    UNDECIDED = "undecided"  # past expires_at without a final decision
    APPROVAL_LAPSED = "approval_lapsed"  # approved, but not executed by approval_expires_at

# The one precedence rule between a stage's own number and the policy's approvals by risk (the editor shows it).
APPROVALS_PRECEDENCE = ("A stage with a fixed number of approvals always needs that number. A stage set to "
                        "\"by risk\" takes the policy's approvals by risk for the request's risk level (1 where "
                        "a level is left empty). Approvals by risk with no stage set to \"by risk\" is refused.")


def stage_approvals(stage: dict, approvals_by_risk: dict | None, risk_level: str) -> int:
    """Approvals a stage needs at `risk_level`: APPROVALS_PRECEDENCE, the only place it is decided."""
    fixed = stage.get("approvals_required")
    if fixed is not None:
        return int(fixed)
    return int((approvals_by_risk or {}).get(risk_level, 1))


class Policy(models.Model):
    """How one escalation type is handled in one tenant. Escalations keep a snapshot of it."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="policies")
    type = models.CharField(max_length=64, help_text="Upper-case code, e.g. HIGH_VALUE.")
    name = models.CharField(max_length=200)
    # [{"roles": [...], "approvals_required": n | null, "when": condition?}, ...]; see stage_approvals and
    # escalations.conditions (a stage with "when" applies only to requests where the condition holds).
    route = models.JSONField()
    approvals_by_risk = models.JSONField(default=dict, blank=True, help_text='e.g. {"low": 0, "medium": 1, "high": 2}')
    default_risk_level = models.CharField(max_length=8, choices=RiskLevel.choices, default=RiskLevel.MEDIUM)
    ack_sla_seconds = models.PositiveIntegerField(default=4 * 3600)
    expiry_seconds = models.PositiveIntegerField(default=24 * 3600)
    ladder = models.JSONField(default=list, blank=True)
    max_escalation_level = models.PositiveSmallIntegerField(default=2)
    notify_channels = models.JSONField(default=list, blank=True)
    single_employee_mode = models.BooleanField(default=False)
    expiry_outcome = models.CharField(max_length=8, choices=ExpiryOutcome.choices, default=ExpiryOutcome.EXPIRE)
    high_risk_expiry_outcome = models.CharField(max_length=8, choices=ExpiryOutcome.choices,
                                                default=ExpiryOutcome.EXPIRE)
    # A deferral is bounded: at most this far ahead, and never past the case's expires_at unless the policy lets a
    # deferral extend it (then the deferral is audited and notified as extending the expiry).
    max_deferral_seconds = models.PositiveIntegerField(default=DEFAULT_MAX_DEFERRAL_SECONDS)
    deferral_may_extend_expiry = models.BooleanField(default=False)
    # Change management (escalations.schedule): how long an approval stays valid before it must be executed
    # (null: until the execution window ends, if any), how long an execution window may be, and when a
    # condition of an approval (an obligation) falls due unless the approver names a date.
    approval_ttl_seconds = models.PositiveIntegerField(null=True, blank=True)
    max_window_seconds = models.PositiveIntegerField(default=DEFAULT_MAX_WINDOW_SECONDS)
    condition_due_seconds = models.PositiveIntegerField(default=DEFAULT_CONDITION_DUE_SECONDS)
    is_active = models.BooleanField(default=True)
    # An amended case keeps the policy version it started under unless this says it takes the current one
    # (escalations.amendments.amendment_policy: the pinning rule, docs in README "Amendments").
    amendments_take_current_version = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()
    objects = ConfigQuerySet.as_manager()  # bulk writes replace the tenant's config generation

    class Meta:
        verbose_name_plural = "policies"
        ordering = ["tenant", "type"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "type"], name="policy_type_unique"),
            models.CheckConstraint(condition=models.Q(max_escalation_level__lte=3), name="policy_max_level_le_3"),
            models.CheckConstraint(condition=models.Q(ack_sla_seconds__gte=60), name="policy_ack_sla_min"),
            models.CheckConstraint(condition=models.Q(expiry_seconds__gte=60), name="policy_expiry_min"),
            models.CheckConstraint(condition=models.Q(max_deferral_seconds__gte=60), name="policy_max_deferral_min"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.type} v{self.version}"

    def effective_approvals(self) -> list[dict[str, int]]:
        """Per stage, the approvals needed at each risk level (so no setting is silently overridden)."""
        return [{risk: stage_approvals(stage, self.approvals_by_risk, risk) for risk in RiskLevel.values}
                for stage in self.route or []]


class TriggerRule(models.Model):
    """Picks the escalation type when the source does not name one."""

    class Kind(models.TextChoices):
        AMOUNT_AT_LEAST = "amount_at_least", "Amount at least (minor units, per currency)"
        FLAG = "flag", "Flag present"

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="trigger_rules")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    escalation_type = models.CharField(max_length=64)
    currency = models.CharField(max_length=3, blank=True)
    threshold_minor = models.BigIntegerField(null=True, blank=True)
    flag = models.CharField(max_length=64, blank=True)
    risk_level = models.CharField(max_length=8, choices=RiskLevel.choices, blank=True,
                                  help_text="Risk level given to matching requests that do not state one.")
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower runs first; the first match wins.")
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()
    objects = ConfigQuerySet.as_manager()  # bulk writes replace the tenant's config generation

    class Meta:
        ordering = ["tenant", "priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind="amount_at_least", threshold_minor__gte=0) & ~models.Q(currency=""))
                | (models.Q(kind="flag") & ~models.Q(flag="")),
                name="trigger_rule_complete",
            )
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.AMOUNT_AT_LEAST:
            return f"{self.currency} >= {self.threshold_minor} -> {self.escalation_type}"
        return f"flag {self.flag} -> {self.escalation_type}"


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
    held = delegations_held(actor=actor, at=at)
    if not held:
        return None
    q = models.Q(pk__in=[])
    for delegation, roles in held:
        part = models.Q(assigned_role__in=sorted(roles))
        if delegation.escalation_types:
            part &= models.Q(type__in=list(delegation.escalation_types))
        q |= part
    return q


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
        if actor.can(Capability.ESCALATION_VIEW):
            # A delegate sees what they hold for someone away (issue 19), as that person would.
            held = delegated_q(actor)
            own = models.Q(assigned_role__in=sorted(actor.roles)) | models.Q(requested_by_user=actor.user)
            return mine.filter(own | held if held is not None else own)
        return mine.none()

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


class ChangeTemplate(models.Model):
    """A standard change: defaults for a new escalation, optionally pre-approved within limits.

    Each save bumps `version`; simple-history keeps every version, and an escalation made from one records
    the version it used (Escalation.template), so editing a template never rewrites what was decided under it.
    """

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="change_templates")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=64, help_text="The escalation type (policy) it creates, e.g. OPERATION_CHANGE.")
    # {"reason", "risk_level", "urgency", "payload", "payload_schema", "justification"}: all optional.
    defaults = models.JSONField(default=dict, blank=True)
    pre_approved = models.BooleanField(default=False, help_text="Within its limits, approved at once.")
    max_amount_minor = models.BigIntegerField(null=True, blank=True,
                                              help_text="Pre-approval limit on amount (and estimated cost), minor units.")
    max_risk_level = models.CharField(max_length=8, choices=RiskLevel.choices, blank=True,
                                      help_text="Pre-approval limit: the highest risk level it covers.")
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["tenant", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="change_template_slug_unique"),
            models.CheckConstraint(condition=models.Q(max_amount_minor__isnull=True) | models.Q(max_amount_minor__gte=0),
                                   name="change_template_max_amount_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.slug} v{self.version}"


class Term(models.Model):
    """A tenant's own word for a role, an escalation type, a reason or a status (its language pack), in one
    language or in all. Read through escalations.terminology.label, never directly."""

    class Kind(models.TextChoices):
        ROLE = "role", "Role"
        ESCALATION_TYPE = "escalation_type", "Escalation type"
        REASON = "reason", "Reason"
        STATUS = "status", "Status"

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="terms")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=200, help_text=(
        "What is named: a role (compliance_officer), a type (HIGH_VALUE), a status (pending) or a reason's exact "
        "text (flag vendor_flagged)."))
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES,
                                help_text="Blank: every language without a label of its own.")
    label = models.CharField(max_length=200, help_text="What people read instead, e.g. Directeur financier.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["tenant", "kind", "key", "language"]
        constraints = [models.UniqueConstraint(fields=["tenant", "kind", "key", "language"], name="term_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} [{self.language or '*'}] = {self.label}"


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
            models.CheckConstraint(condition=models.Q(author_user__isnull=False) | models.Q(author_api_key__isnull=False),
                                   name="comment_has_author"),
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
