"""How an escalation type is handled: its policy, the trigger rules that pick it, and their choices."""

from __future__ import annotations

from typing import Any

from django.db import models
from simple_history.models import HistoricalRecords

from accounts.config_queryset import ConfigQuerySet


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


def stage_approvals(stage: dict[str, Any], approvals_by_risk: dict[str, int] | None, risk_level: str) -> int:
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
