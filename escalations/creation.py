"""Check and create: would a request escalate, and opening the escalation (escalations.services re-exports both).

escalation_create is one transaction: the approval request and its stages, the escalation, the sealed personal
data, its outbox and audit events. What it reads of the tenant's configuration (trigger rules, policies) comes
from the process's cache while the tenant's configuration generation is unchanged (escalations.policies.tenant_rules).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.roles import Capability
from accounts.selectors import is_member_email
from approvals.models import ApprovalRequest
from approvals.services import StageSpec, approval_request_create
from audit.actions import AuditAction
from notifications.outbox import catalogue as events
from privacy.vault import SEALED_REQUESTER, blind_mark, record_link, requester_seal, seal_case
from trustguard.errors import PermissionDenied, Unprocessable, ValidationFailed

from . import standard_changes
from .changes import close, open_for_acknowledgement, record_change, refresh_next_deadline, sync_from_approval
from .conditions import Facts, request_facts
from .intake import (
    CheckResult,
    ExecutionWindow,
    Money,
    SourceRef,
    clean_contact,
    validate_create,
    validate_estimated_cost,
    validate_execution_window,
)
from .models import Escalation, EscalationStatus, RiskLevel, Urgency
from .policies import match_trigger, policy_for, policy_snapshot, tenant_rules
from .routing import route_for_request
from .standins import flag_if_unstaffed


def escalation_check(*, actor: Actor, type: str | None = None, amount: Money | None = None,
                     flags: Sequence[str] = (), risk_level: str | None = None, facts: Facts | None = None,
                     estimated_cost: Money | None = None) -> CheckResult:
    """Dry run: would this escalate, as what type, to whom, with how many approvals? Creates nothing.

    `facts` (conditions.request_facts) decide which conditional stages apply; its risk_level is the resolved one.
    Without them, the facts are the amount and the estimated cost.
    """
    cost_errors: dict[str, list[str]] = {}
    validate_estimated_cost(estimated_cost, cost_errors)
    if cost_errors:
        raise ValidationFailed("estimated_cost is invalid", errors=cost_errors)
    rules = tenant_rules(tenant=actor.tenant)  # cached per process until the tenant's configuration changes
    if type:
        policy = policy_for(tenant=actor.tenant, type=type, rules=rules)
        reason, rule_risk = f"type {type} requested", None
    else:
        match = match_trigger(tenant=actor.tenant, amount_minor=amount.value_minor if amount else None,
                              currency=amount.currency if amount else "", flags=flags, rules=rules)
        if match is None:
            return CheckResult(requires_escalation=False, reason="no trigger rule matched")
        policy = policy_for(tenant=actor.tenant, type=match.type, rules=rules)
        reason, rule_risk = match.reason, match.risk_level
    risk = risk_level or rule_risk or policy.default_risk_level
    facts = dataclasses.replace(facts or request_facts(amount=amount, estimated_cost=estimated_cost), risk_level=risk)
    plan = route_for_request(snapshot=policy_snapshot(policy), risk_level=risk, facts=facts)
    specs = plan.specs()
    route = [{"stage": i, "role": s.roles[0] if s.roles else "", "roles": list(s.roles), "people": list(s.people),
              "approvals_required": s.approvals_required} for i, s in enumerate(specs)]
    return CheckResult(requires_escalation=True, type=policy.type, reason=reason, risk_level=risk,
                       approvals_required=sum(s.approvals_required for s in specs), route=route, policy=policy,
                       plan=plan)


@transaction.atomic
def escalation_create(*, actor: Actor, reason: str, source: SourceRef, type: str | None = None,
                      amount: Money | None = None, risk_level: str | None = None, urgency: str = Urgency.NORMAL,
                      flags: Sequence[str] = (), payload: dict[str, Any] | None = None, requested_by: str = "",
                      contact: dict[str, str] | None = None, estimated_cost: Money | None = None,
                      execution_window: ExecutionWindow | None = None, template: str | None = None) -> Escalation:
    """Open an escalation under the tenant's policy (chosen by trigger rules when no type is given).

    1. Authorise: an API key may create; a person needs escalation.create_manual.
    2. Apply the template's defaults (if one is named); resolve type, risk and route; refuse (422) when
       nothing would escalate; check the execution window against the policy.
    3. Snapshot the policy, create the approval request, set deadlines, record it.
       A route that needs no approval (low risk, 0 approvals) is approved at once; so is a request from a
       pre-approved template within its limits (recorded as pre-approved by that template version).
    """
    needed = Capability.ESCALATION_CREATE_MANUAL if actor.user else "escalation.create"
    if not actor.can(needed):
        raise PermissionDenied(f"creating escalations needs {needed}", slug="missing-capability")
    applied = standard_changes.template_apply(tenant=actor.tenant, slug=template, type=type, reason=reason,
                                              risk_level=risk_level, urgency=urgency, payload=payload)
    type, reason, risk_level, urgency, payload = (applied.type, applied.reason, applied.risk_level, applied.urgency,
                                                  applied.payload)
    validate_create(reason, source, amount, risk_level, urgency, flags, payload, requested_by,
                    estimated_cost=estimated_cost)
    contact_errors: dict[str, list[str]] = {}
    contact = clean_contact(contact, contact_errors)
    if contact_errors:
        raise ValidationFailed("the contact is invalid: " + ", ".join(sorted(contact_errors)), errors=contact_errors)
    facts = request_facts(amount=amount, estimated_cost=estimated_cost, risk_level=risk_level, urgency=urgency,
                          source_system=source.system, source_entity_type=source.entity_type, payload=payload)
    check = escalation_check(actor=actor, type=type, amount=amount, flags=flags, risk_level=risk_level, facts=facts)
    if not check.requires_escalation or check.policy is None or check.plan is None:
        raise Unprocessable("no trigger rule matched: this request does not need an escalation "
                            "(POST /escalations/check tells without creating)", slug="no-escalation-required")
    policy, risk = check.policy, check.risk_level or RiskLevel.MEDIUM
    window_errors: dict[str, list[str]] = {}
    validate_execution_window(execution_window, window_errors, now=timezone.now(),
                              max_seconds=policy.max_window_seconds)
    if window_errors:
        raise ValidationFailed("execution_window is invalid: " + ", ".join(sorted(window_errors)), errors=window_errors)
    # The route is decided once, here, and pinned with the policy version (routing.route_for_request).
    snapshot = {**policy_snapshot(policy), "route_plan": check.plan.pinned(actor.tenant.locale)}
    specs = check.plan.specs()
    pre_approved = applied.template is not None and standard_changes.within_limits(
        applied.template, amount=amount, estimated_cost=estimated_cost, risk_level=risk)
    if pre_approved:  # a standard change: every stage complete at once, recorded as such below
        specs = [StageSpec(roles=s.roles, approvals_required=0) for s in specs]
    requester_email = (actor.user.email if actor.user else requested_by or "").strip()
    # A source naming someone outside the tenant: a third party's email, sealed (privacy.vault); the four-eyes
    # rule compares its blind index, so that person cannot approve it should they join the tenant later.
    outsider = bool(actor.user is None and requester_email
                    and not is_member_email(tenant_id=actor.tenant.pk, email=requester_email))
    approval, stages = approval_request_create(
        tenant=actor.tenant, stages=specs, requester_user=actor.user,
        requester_email=blind_mark(requester_email) if outsider else requester_email,
        allow_self_approval=actor.tenant.single_employee_mode or policy.single_employee_mode,
    )
    now = timezone.now()
    # Personal data is sealed before it reaches a row: the customer's contact and the payload fields the
    # tenant marks as personal, under the customer's own data key (privacy.vault; docs/PRIVACY.md).
    sealed = seal_case(tenant_id=actor.tenant.pk, contact=contact, payload=payload)
    escalation = Escalation(
        tenant=actor.tenant, policy=policy, policy_version=policy.version, policy_snapshot=snapshot,
        approval=approval, type=policy.type, reason=reason.strip(), source_system=source.system,
        source_entity_type=source.entity_type, source_entity_id=source.entity_id, source_url=source.url or "",
        amount_minor=amount.value_minor if amount else None, currency=amount.currency if amount else "",
        risk_level=risk, urgency=urgency, flags=list(flags), payload=sealed.payload, contact=sealed.contact,
        requested_by_user=actor.user, requested_by_api_key=actor.api_key,
        requested_by_email=SEALED_REQUESTER if outsider else requester_email,
        expires_at=now + timedelta(seconds=policy.expiry_seconds),
        estimated_cost_minor=estimated_cost.value_minor if estimated_cost else None,
        estimated_cost_currency=estimated_cost.currency if estimated_cost else "",
        window_starts_at=execution_window.starts_at if execution_window else None,
        window_ends_at=execution_window.ends_at if execution_window else None,
        template=(standard_changes.template_record(applied.template, pre_approved=pre_approved)
                  if applied.template is not None else None),
    )
    sync_from_approval(escalation, approval, stages[approval.current_stage])
    if approval.status == ApprovalRequest.Status.APPROVED:
        close(escalation, EscalationStatus.APPROVED, now)
    else:
        open_for_acknowledgement(escalation, now)
        refresh_next_deadline(escalation)
    escalation.save(force_insert=True)
    if sealed.subject is not None:
        record_link(subject=sealed.subject, record_type="escalation", record_id=escalation.pk)
    if outsider:
        requester_seal(tenant_id=actor.tenant.pk, record_type="escalation", record_id=escalation.pk,
                       email=requester_email)
        escalation._privacy_requester_sealed_now = requester_email  # type: ignore[attr-defined]  # the 201 body's, in hand (privacy.vault)
    record_change(escalation, actor=actor, action=AuditAction.ESCALATION_CREATED, before=None,
                  event=events.ESCALATION_CREATED,
                  details={"type": escalation.type, "trigger": check.reason, "policy_version": policy.version})
    flag_if_unstaffed(escalation, actor=actor)  # everyone who could act is away with nobody standing in
    if escalation.status == EscalationStatus.APPROVED:
        how: dict[str, Any] = {"auto_approved": True}
        if pre_approved:
            how["pre_approved_by"] = escalation.template
        record_change(escalation, actor=actor, action=AuditAction.ESCALATION_APPROVED, before=None,
                      event=events.ESCALATION_APPROVED, details=how, event_extra=how)
    return escalation

