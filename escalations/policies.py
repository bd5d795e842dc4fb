"""Policy and trigger-rule logic: route normalisation, quorum by risk, type selection, snapshots."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from accounts.actors import Actor
from accounts.models import Tenant
from accounts.roles import Role
from accounts.selectors import member_states, named_members, role_members, tenant_roles
from accounts.tenant_config import tenant_cached
from audit.actions import AuditAction
from audit.services import audit_record
from trustguard.errors import Conflict, NotFound, ValidationFailed
from trustguard.locks import for_update
from trustguard.money import format_money

from .conditions import validate_condition
from .models import APPROVALS_PRECEDENCE, ExpiryOutcome, Policy, RiskLevel, TriggerRule, stage_approvals

CHANNELS = ("email", "sms", "in_app", "push")
# More approvers than a governing body has members is a configuration mistake, not a policy.
MAX_APPROVALS = 50
# Fields that shape an escalation; the snapshot an escalation keeps, and what a policy edit audits.
SNAPSHOT_FIELDS = ("type", "name", "route", "approvals_by_risk", "default_risk_level", "ack_sla_seconds",
                   "expiry_seconds", "ladder", "max_escalation_level", "notify_channels", "single_employee_mode",
                   "expiry_outcome", "high_risk_expiry_outcome", "max_deferral_seconds", "deferral_may_extend_expiry",
                   "approval_ttl_seconds", "max_window_seconds", "condition_due_seconds",
                   "amendments_take_current_version", "version")


def _role(value: Any, field: str, roles: Collection[str]) -> str:
    if not isinstance(value, str) or value not in roles:
        raise ValidationFailed(f"{field}: {value!r} is not a role of this tenant",
                               errors={field: [f"Unknown role {value!r}: not a role of this tenant."]})
    return value


def _people(value: Any, field: str) -> list[str]:
    """A stage's named people: usernames, each once (their membership is _check_people's, with the tenant)."""
    if not isinstance(value, list) or any(not isinstance(name, str) or not name.strip() for name in value):
        raise ValidationFailed(f"{field} must be a list of usernames", errors={field: ["A list of usernames."]})
    if len(value) > MAX_APPROVALS:
        raise ValidationFailed(f"{field}: at most {MAX_APPROVALS} people", errors={field: [
            f"At most {MAX_APPROVALS} people."]})
    return list(dict.fromkeys(name.strip() for name in value))


def _check_people(stages: list[dict[str, Any]], tenant: Tenant) -> None:
    """Every named person is an active member of `tenant`. Someone of another tenant reads as unknown here, exactly
    like a name nobody has: a tenant never learns who another tenant's people are."""
    named = [(i, name) for i, stage in enumerate(stages) for name in stage.get("people", ())]
    if not named:
        return
    states = member_states(tenant=tenant, usernames=[name for _, name in named])
    for i, name in named:
        field = f"route[{i}].people"
        if name not in states:
            raise ValidationFailed(f"{field}: {name!r} is not a person of this tenant",
                                   errors={field: [f"Unknown person {name!r}: not a member of this tenant."]})
        if not states[name]:
            raise ValidationFailed(f"{field}: {name!r} is inactive in this tenant",
                                   errors={field: [f"{name!r} is inactive in this tenant: they could not decide."]})


def normalize_route(route: Any, roles: Collection[str] = tuple(Role.values), *,
                    tenant: Tenant | None = None) -> list[dict[str, Any]]:
    """Accept the contract's shapes: ordered roles, [[role, ...] per stage], or stage objects (with `when`, and
    `people`: usernames named beside or instead of roles). `roles`: the tenant's (accounts.selectors.tenant_roles);
    the built-ins when not given. With `tenant`, every named person must be an active member of it."""
    if not isinstance(route, list) or not route:
        raise ValidationFailed("route must be a non-empty list of stages", errors={"route": ["A non-empty list."]})
    stages = []
    for i, item in enumerate(route):
        field = f"route[{i}]"
        required = None
        people: list[str] = []
        if isinstance(item, str):
            stage_roles = [item]
        elif isinstance(item, list):
            stage_roles = item
        elif isinstance(item, dict):
            unknown = set(item) - {"roles", "role", "people", "approvals_required", "when"}
            if unknown:
                raise ValidationFailed(f"{field}: unknown keys {', '.join(sorted(unknown))}",
                                       errors={field: [f"Unknown keys: {', '.join(sorted(unknown))}; use roles, "
                                                       "people, approvals_required, when."]})
            people = _people(item.get("people") or [], f"{field}.people")
            stage_roles = item.get("roles") or ([item["role"]] if "role" in item else [])
            if not isinstance(stage_roles, list):
                raise ValidationFailed(f"{field}.roles must be a list", errors={f"{field}.roles": ["A list of roles."]})
            required = item.get("approvals_required")
            if required is not None and (isinstance(required, bool) or not isinstance(required, int)
                                         or not 0 <= required <= MAX_APPROVALS):
                raise ValidationFailed(f"{field}.approvals_required must be 0-{MAX_APPROVALS}",
                                       errors={f"{field}.approvals_required": [
                                           f"A whole number from 0 to {MAX_APPROVALS}."]})
        else:
            raise ValidationFailed(f"{field} must be a role, a list of roles or a stage object",
                                   errors={field: ["Not a stage."]})
        if not stage_roles and not people:
            raise ValidationFailed(f"{field} names no role and no person",
                                   errors={field: ["A stage needs at least one role or named person."]})
        stage: dict[str, Any] = {"roles": [_role(r, f"{field}.roles", roles) for r in stage_roles],
                                 "approvals_required": required}
        if people:  # only when set: routes that name nobody keep their stored shape
            stage["people"] = people
        if isinstance(item, dict) and item.get("when") is not None:
            stage["when"] = validate_condition(item["when"], f"{field}.when")
        stages.append(stage)
    if all(stage.get("when") for stage in stages):
        raise ValidationFailed("route: every stage has a condition, so some requests would have no route",
                               errors={"route": ["At least one stage must apply always (no condition)."]})
    if tenant is not None:
        _check_people(stages, tenant)
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


def policy_snapshot(policy: Policy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in SNAPSHOT_FIELDS}


def expiry_outcome(snapshot: dict[str, Any], risk_level: str) -> str:
    """What expiry means for this escalation: never an approval."""
    field = "high_risk_expiry_outcome" if risk_level == RiskLevel.HIGH else "expiry_outcome"
    outcome: str = snapshot.get(field, ExpiryOutcome.EXPIRE)
    return outcome


@dataclass(frozen=True)
class TenantRules:
    """A tenant's active trigger rules (by priority) and active policies (by type), as of one generation.

    Shared by the requests of a process (accounts.tenant_config): read, never change.
    """

    rules: tuple[TriggerRule, ...]
    policies: dict[str, Policy]


def tenant_rules(*, tenant: Tenant | int) -> TenantRules:
    """The tenant's rules and policies, cached per process until either changes (one primary-key read per call)."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk

    def load() -> TenantRules:
        policies: dict[str, Policy] = {}
        for policy in Policy.objects.filter(tenant_id=tenant_id, is_active=True).order_by("type", "pk"):
            policies.setdefault(policy.type, policy)
        rules = TriggerRule.objects.filter(tenant_id=tenant_id, is_active=True).order_by("priority", "id")
        return TenantRules(rules=tuple(rules), policies=policies)

    return tenant_cached(tenant, "escalations.rules", load)


def policy_for(*, tenant: Tenant, type: str, rules: TenantRules | None = None) -> Policy:
    """The tenant's active policy of `type` (a shared, cached instance: read it, never change it)."""
    policy = (rules or tenant_rules(tenant=tenant)).policies.get(type)
    if policy is None:
        raise NotFound(f"no active policy for escalation type {type!r}", slug="unknown-escalation-type")
    return policy


@dataclass(frozen=True)
class RuleMatch:
    type: str
    risk_level: str | None
    reason: str


def match_trigger(*, tenant: Tenant, amount_minor: int | None, currency: str, flags: Iterable[str],
                  rules: TenantRules | None = None) -> RuleMatch | None:
    """The first active rule (by priority) that matches, or None: no escalation needed."""
    flag_set = set(flags)
    for rule in (rules or tenant_rules(tenant=tenant)).rules:
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


def validate_policy_fields(fields: dict[str, Any], *, tenant: Tenant | None = None,
                           current: Policy | None = None) -> dict[str, Any]:
    """Check and normalise editable policy fields; raise ValidationFailed naming each bad one.

    Routes and ladders may name the tenant's roles, built-in and custom (accounts.selectors.tenant_roles; the
    built-ins alone without `tenant`). With `tenant`, the route is also checked against the whole policy
    (`current` fills the fields not sent):
    approvals by risk must reach a stage (APPROVALS_PRECEDENCE), and no stage may need more approvals than
    the tenant has people who could give them.
    """
    out = dict(fields)
    roles: Collection[str] = tenant_roles(tenant=tenant) if tenant is not None else tuple(Role.values)
    if "route" in out:
        out["route"] = normalize_route(out["route"], roles, tenant=tenant)
    if "approvals_by_risk" in out:
        out["approvals_by_risk"] = normalize_approvals_by_risk(out["approvals_by_risk"])
    if "ladder" in out:
        if not isinstance(out["ladder"], list):
            raise ValidationFailed("ladder must be a list of roles", errors={"ladder": ["A list of roles."]})
        out["ladder"] = [_role(r, f"ladder.{i}", roles) for i, r in enumerate(out["ladder"])]
    if "notify_channels" in out:
        channels = out["notify_channels"]
        if not isinstance(channels, list) or any(c not in CHANNELS for c in channels):
            raise ValidationFailed(f"notify_channels takes {', '.join(CHANNELS)}",
                                   errors={"notify_channels": [f"Choose from {', '.join(CHANNELS)}."]})
    level = out.get("max_escalation_level")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 3):
        raise ValidationFailed("max_escalation_level must be 0-3", errors={"max_escalation_level": ["0 to 3."]})
    ttl = out.get("approval_ttl_seconds")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 60):
        raise ValidationFailed("approval_ttl_seconds must be at least 60 (or null: no TTL)",
                               errors={"approval_ttl_seconds": ["At least 60 seconds, or null."]})
    for name in ("ack_sla_seconds", "expiry_seconds", "max_deferral_seconds", "max_window_seconds",
                 "condition_due_seconds"):
        value = out.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 60):
            raise ValidationFailed(f"{name} must be at least 60", errors={name: ["At least 60 seconds."]})
    if tenant is not None:
        _check_route_against_policy(out, tenant=tenant, current=current)
    return out


def _check_route_against_policy(out: dict[str, Any], *, tenant: Tenant, current: Policy | None) -> None:
    """The whole-policy checks of a route: by-risk numbers used somewhere, enough people for every stage."""
    route = out.get("route", current.route if current else None)
    by_risk = out.get("approvals_by_risk", current.approvals_by_risk if current else {}) or {}
    if not route:
        return
    if by_risk and all(stage.get("approvals_required") is not None for stage in route):
        raise ValidationFailed(
            "approvals_by_risk would change nothing: every stage fixes its own number of approvals",
            errors={"approvals_by_risk": ["No stage takes its approvals by risk, so these numbers would change "
                                          "nothing. Set a stage's approvals to \"by risk\" (approvals_required: "
                                          "null), or leave approvals by risk empty. " + APPROVALS_PRECEDENCE]})
    for i, stage in enumerate(route):
        needed = max(stage_approvals(stage, by_risk, risk) for risk in RiskLevel.values)
        if needed <= 1:
            continue  # one approver: a role nobody holds yet is staffed later (the ladder skips empty levels)
        # Who could approve: the members of its roles and the people it names, each person once.
        eligible = {pk for role in stage["roles"] for pk in role_members(tenant=tenant, role=role).values_list("pk", flat=True)}
        eligible |= set(named_members(tenant=tenant, usernames=stage.get("people", ())))
        if needed > len(eligible):
            field = f"route[{i}].approvals_required" if stage.get("approvals_required") is not None else "approvals_by_risk"
            one = len(eligible) == 1
            holds = f"{'person holds' if one else 'people hold'} {', '.join(stage['roles'])}"
            if stage.get("people"):  # distinct: a named person who also holds a role counts once
                holds = (f"distinct {'person is' if one else 'people are'} named on it or "
                         f"{'holds' if one else 'hold'} {', '.join(stage['roles'])}" if stage["roles"]
                         else f"named {'person is' if one else 'people are'} active")
            raise ValidationFailed(
                f"{field}: stage {i + 1} needs {needed} approvals but only {len(eligible)} "
                + ("people could approve it" if stage.get("people") else "people hold its roles"),
                errors={field: [f"Stage {i + 1} needs {needed} approvals but only {len(eligible)} active {holds}."]})


@transaction.atomic
def policy_upsert(*, tenant: Tenant, type: str, fields: dict[str, Any], actor: Actor,
                  expected_version: int | None = None) -> Policy:
    """Create or edit a policy; an edit bumps its version. Escalations in flight keep their snapshot.

    1. Lock the policy row (only it: trustguard.locks); when the caller read `expected_version` and the row
       has moved on since, refuse (409): two editors starting from one version, one wins, one is told.
    2. Check the fields against the locked policy, and edit it, or
    3. insert it; when a concurrent first PUT of the same type inserted it first (the unique constraint
       says so), lock the winner's row and apply this request as an edit of it.
    """
    validate_policy_fields(fields, tenant=tenant)  # the document first: a bad one is 400 whatever the version
    policy = for_update(Policy.objects.filter(tenant=tenant, type=type)).first()
    if expected_version is not None and (policy.version if policy else 0) != expected_version:
        current = policy.version if policy else "none (no such policy yet)"
        raise Conflict(f"the policy changed since version {expected_version} was read (now version {current}); "
                       "GET it again and re-apply the change", slug="stale-version",
                       errors={"version": [f"Stale: the current version is {current}."]})
    cleaned = validate_policy_fields(fields, tenant=tenant, current=policy)
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
