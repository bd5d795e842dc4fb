"""Policy and trigger-rule logic: route normalisation, quorum by risk, type selection, snapshots."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from accounts.actors import Actor
from accounts.models import Tenant
from accounts.roles import Role
from approvals.services import StageSpec
from audit.actions import AuditAction
from audit.services import audit_record
from trustguard.errors import NotFound, ValidationFailed
from trustguard.locks import for_update
from trustguard.money import format_money

from .models import ExpiryOutcome, Policy, RiskLevel, TriggerRule

CHANNELS = ("email", "sms", "in_app")
# More approvers than a governing body has members is a configuration mistake, not a policy.
MAX_APPROVALS = 50
# Fields that shape an escalation; the snapshot an escalation keeps, and what a policy edit audits.
SNAPSHOT_FIELDS = ("type", "name", "route", "approvals_by_risk", "default_risk_level", "ack_sla_seconds",
                   "expiry_seconds", "ladder", "max_escalation_level", "notify_channels", "single_employee_mode",
                   "expiry_outcome", "high_risk_expiry_outcome", "max_deferral_seconds", "deferral_may_extend_expiry",
                   "amendments_take_current_version", "version")


def _role(value: Any, field: str) -> str:
    if not isinstance(value, str) or value not in Role.values:
        raise ValidationFailed(f"{field}: {value!r} is not a role", errors={field: [f"Unknown role {value!r}."]})
    return value


def normalize_route(route: Any) -> list[dict[str, Any]]:
    """Accept the contract's shapes: ordered roles, [[role, ...] per stage], or stage objects."""
    if not isinstance(route, list) or not route:
        raise ValidationFailed("route must be a non-empty list of stages", errors={"route": ["A non-empty list."]})
    stages = []
    for i, item in enumerate(route):
        field = f"route[{i}]"
        required = None
        if isinstance(item, str):
            roles = [item]
        elif isinstance(item, list):
            roles = item
        elif isinstance(item, dict):
            roles = item.get("roles") or ([item["role"]] if "role" in item else [])
            required = item.get("approvals_required")
            if required is not None and (isinstance(required, bool) or not isinstance(required, int)
                                         or not 0 <= required <= MAX_APPROVALS):
                raise ValidationFailed(f"{field}.approvals_required must be 0-{MAX_APPROVALS}",
                                       errors={field: [f"approvals_required: a whole number from 0 to {MAX_APPROVALS}."]})
        else:
            raise ValidationFailed(f"{field} must be a role, a list of roles or a stage object",
                                   errors={field: ["Not a stage."]})
        if not roles:
            raise ValidationFailed(f"{field} names no role", errors={field: ["A stage needs at least one role."]})
        stages.append({"roles": [_role(r, field) for r in roles], "approvals_required": required})
    return stages


def normalize_approvals_by_risk(value: Any) -> dict[str, int]:
    if value in (None, {}):
        return {}
    if not isinstance(value, dict) or set(value) - set(RiskLevel.values):
        raise ValidationFailed("approvals_by_risk maps low/medium/high to counts",
                               errors={"approvals_by_risk": ["Keys must be low, medium, high."]})
    out = {}
    for level, count in value.items():
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_APPROVALS:
            raise ValidationFailed(f"approvals_by_risk counts must be 0-{MAX_APPROVALS}",
                                   errors={"approvals_by_risk": [f"{level}: a whole number from 0 to {MAX_APPROVALS}."]})
        out[level] = count
    return out


def stage_specs(snapshot: dict[str, Any], risk_level: str) -> list[StageSpec]:
    """The stages an escalation of `risk_level` goes through under a policy snapshot."""
    by_risk = snapshot.get("approvals_by_risk") or {}
    specs = []
    for stage in snapshot["route"]:
        required = stage.get("approvals_required")
        if required is None:
            required = by_risk.get(risk_level, 1) if by_risk else 1
        specs.append(StageSpec(roles=stage["roles"], approvals_required=required))
    return specs


def policy_snapshot(policy: Policy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in SNAPSHOT_FIELDS}


def expiry_outcome(snapshot: dict[str, Any], risk_level: str) -> str:
    """What expiry means for this escalation: never an approval."""
    if risk_level == RiskLevel.HIGH:
        return snapshot.get("high_risk_expiry_outcome", ExpiryOutcome.EXPIRE)
    return snapshot.get("expiry_outcome", ExpiryOutcome.EXPIRE)


def policy_for(*, tenant: Tenant, type: str) -> Policy:
    policy = Policy.objects.filter(tenant=tenant, type=type, is_active=True).first()
    if policy is None:
        raise NotFound(f"no active policy for escalation type {type!r}", slug="unknown-escalation-type")
    return policy


@dataclass(frozen=True)
class RuleMatch:
    type: str
    risk_level: str | None
    reason: str


def match_trigger(*, tenant: Tenant, amount_minor: int | None, currency: str, flags: Iterable[str]) -> RuleMatch | None:
    """The first active rule (by priority) that matches, or None: no escalation needed."""
    flag_set = set(flags)
    for rule in TriggerRule.objects.filter(tenant=tenant, is_active=True).order_by("priority", "id"):
        if rule.kind == TriggerRule.Kind.FLAG and rule.flag in flag_set:
            return RuleMatch(rule.escalation_type, rule.risk_level or None, f"flag {rule.flag}")
        if (rule.kind == TriggerRule.Kind.AMOUNT_AT_LEAST and amount_minor is not None
                and currency == rule.currency and rule.threshold_minor is not None
                and amount_minor >= rule.threshold_minor):
            # People read this reason (the case page, messages, reports): money as money.
            return RuleMatch(rule.escalation_type, rule.risk_level or None,
                             f"amount {format_money(amount_minor, currency, tenant.locale)} is at least "
                             f"{format_money(rule.threshold_minor, currency, tenant.locale)}")
    return None


def validate_policy_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise editable policy fields; raise ValidationFailed naming each bad one."""
    out = dict(fields)
    if "route" in out:
        out["route"] = normalize_route(out["route"])
    if "approvals_by_risk" in out:
        out["approvals_by_risk"] = normalize_approvals_by_risk(out["approvals_by_risk"])
    if "ladder" in out:
        if not isinstance(out["ladder"], list):
            raise ValidationFailed("ladder must be a list of roles", errors={"ladder": ["A list of roles."]})
        out["ladder"] = [_role(r, "ladder") for r in out["ladder"]]
    if "notify_channels" in out:
        channels = out["notify_channels"]
        if not isinstance(channels, list) or any(c not in CHANNELS for c in channels):
            raise ValidationFailed("notify_channels takes email, sms, in_app",
                                   errors={"notify_channels": [f"Choose from {', '.join(CHANNELS)}."]})
    level = out.get("max_escalation_level")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 3):
        raise ValidationFailed("max_escalation_level must be 0-3", errors={"max_escalation_level": ["0 to 3."]})
    for name in ("ack_sla_seconds", "expiry_seconds", "max_deferral_seconds"):
        value = out.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 60):
            raise ValidationFailed(f"{name} must be at least 60", errors={name: ["At least 60 seconds."]})
    return out


@transaction.atomic
def policy_upsert(*, tenant: Tenant, type: str, fields: dict[str, Any], actor: Actor) -> Policy:
    """Create or edit a policy; an edit bumps its version. Escalations in flight keep their snapshot.

    1. Lock the policy row (only it: trustguard.locks) and edit it, or
    2. insert it; when a concurrent first PUT of the same type inserted it first (the unique constraint
       says so), lock the winner's row and apply this request as an edit of it.
    """
    cleaned = validate_policy_fields(fields)
    policy = for_update(Policy.objects.filter(tenant=tenant, type=type)).first()
    if policy is None:
        if "route" not in cleaned:
            raise ValidationFailed("a new policy needs a route", errors={"route": ["This field is required."]})
        try:
            with transaction.atomic():
                created = Policy(tenant=tenant, type=type, name=cleaned.get("name", type.replace("_", " ").title()))
                return _policy_write(created, None, cleaned, actor)
        except IntegrityError:
            policy = for_update(Policy.objects.filter(tenant=tenant, type=type)).get()
    before = policy_snapshot(policy)
    policy.version += 1
    return _policy_write(policy, before, cleaned, actor)


def _policy_write(policy: Policy, before: dict[str, Any] | None, cleaned: dict[str, Any], actor: Actor) -> Policy:
    for name, value in cleaned.items():
        setattr(policy, name, value)
    policy.save()
    audit_record(tenant_id=policy.tenant_id, action=AuditAction.POLICY_CHANGED, actor=actor, target_type="policy",
                 target_id=policy.type, before=before, after=policy_snapshot(policy))
    return policy
