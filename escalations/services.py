"""The escalation lifecycle: check, create, acknowledge, decide, cancel, record execution.

Each top-level service is one transaction: lock the escalation, re-check state on the locked
row, change it (escalations.changes), save it and record the change: the outbox event and the audit
event (audit last: it takes the tenant's chain lock, held until commit). Network work is left to the
relay after commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.roles import Capability
from accounts.selectors import is_member_email
from accounts.stepup import StepUpSubject, stepup_verify
from approvals.models import ApprovalRequest, ApprovalStage, Decision
from approvals.services import (
    StageSpec,
    approval_check_decider,
    approval_close,
    approval_decide,
    approval_lock,
    approval_request_create,
    current_stage,
    validate_decision_input,
)
from audit.actions import AuditAction
from notifications.outbox import catalogue as events
from notifications.outbox.catalogue import EventKind
from privacy.vault import SEALED_REQUESTER, blind_mark, record_link, requester_seal, seal_case
from trustguard.errors import Conflict, DomainError, NotFound, PermissionDenied, Unprocessable, ValidationFailed
from trustguard.jsonutil import canonical_json

from . import obligations, standard_changes
from .changes import (
    audit_state,
    close,
    end_deferral,
    open_for_acknowledgement,
    record_change,
    refresh_next_deadline,
    resume_deferred,
    sync_from_approval,
)
from .changes import event_data as event_data  # re-exported: other apps' and tests' import of it
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
from .models import DEFAULT_MAX_DEFERRAL_SECONDS, OPEN_STATUSES, Escalation, EscalationStatus, RiskLevel, Urgency
from .policies import match_trigger, policy_for, policy_snapshot, tenant_rules
from .routing import route_for_request
from .schedule import execution_window_check
from .standins import Capacity, decider_capacity, flag_if_unstaffed

__all__ = ["CheckResult", "Money", "SourceRef"]  # the request's parts, as callers have always imported them


# --- helpers ---------------------------------------------------------------------------------

def content_hash(escalation: Escalation) -> str:
    """What a step-up code is bound to: the escalation as it is being decided, at its current stage."""
    return hashlib.sha256(canonical_json({
        "id": str(escalation.pk), "type": escalation.type, "reason": escalation.reason,
        "amount": [escalation.amount_minor, escalation.currency], "payload": escalation.payload,
        "source": [escalation.source_system, escalation.source_entity_type, escalation.source_entity_id],
        "stage": escalation.current_stage, "revision": escalation.revision,
    }).encode()).hexdigest()


def stepup_subject(escalation: Escalation) -> StepUpSubject:
    return StepUpSubject(type="escalation", id=str(escalation.pk), content_hash=content_hash(escalation))


def lock_escalation(escalation: Escalation | str, *, actor: Actor | None = None,
                    related: Sequence[str] = ("tenant",)) -> Escalation:
    """Lock the escalation's row, reading the `related` rows with it (read, not locked).

    Only the escalation's row: a plain FOR UPDATE would lock the joined tenant row too, and with it
    serialise every action of the tenant (and block each insert that references the tenant).
    With `actor`, an id is looked up among the cases the actor may act on (Escalation.objects.actionable_by;
    NotFound otherwise) in the same query, and the escalation's tenant is the actor's, already in hand.
    """
    queryset = Escalation.objects.select_for_update(of=("self",)).select_related(*related)
    if isinstance(escalation, Escalation):
        found = queryset.get(pk=escalation.pk)
    elif actor is None:
        return queryset.get(pk=escalation)
    else:
        try:
            found = queryset.actionable_by(actor).get(pk=uuid.UUID(str(escalation)))
        except (ValueError, Escalation.DoesNotExist):
            raise NotFound("no such escalation", slug="not-found") from None
    if actor is not None and found.tenant_id == actor.tenant.pk:
        found.tenant = actor.tenant
    return found


def deadline_passed(escalation: Escalation, now: datetime) -> DomainError | None:
    """Past expires_at and not yet swept: the sweep's own expiry, applied now; 409 naming the deadline.

    The caller (a decision, an acknowledgement) holds the row lock, returns the error so that its transaction
    commits the case's outcome, and raises it after the commit.
    """
    if escalation.status not in OPEN_STATUSES or escalation.expires_at > now:
        return None
    if escalation.status == EscalationStatus.DEFERRED and escalation.deferred_at is not None:
        return None  # its clock is stopped: the expiry moves on when it wakes
    from .sweeps import deadlines_apply_one  # the sweeps build on this module

    expires_at = escalation.expires_at
    deadlines_apply_one(escalation.pk, now)
    escalation.refresh_from_db(fields=["status", "closed_at", "decided_at", "defer_until", "deferred_at",
                                       "expires_at", "next_deadline_at", "updated_at"])
    if escalation.status in OPEN_STATUSES:  # the deferral woke, with its clock stopped: still in time
        return None
    return Conflict(f"the escalation's deadline expires_at ({expires_at.isoformat()}) has passed: it is now "
                    f"{escalation.status}", slug="deadline-passed",
                    extra={"deadline": "expires_at", "expires_at": expires_at.isoformat(),
                           "escalation_status": escalation.status})


def deferral_check(escalation: Escalation, defer_until: datetime, now: datetime) -> bool:
    """A deferral within the policy's bounds (400 naming defer_until otherwise); True when it extends the expiry.

    At most max_deferral_seconds ahead (30 days by default). A policy with deferral_may_extend_expiry stops the SLA
    clock while deferred (the time slept is added to expires_at on waking) and lets defer_until pass expires_at;
    such a deferral's audit event and escalation.deferred event say extends_expiry. Otherwise the clock runs on and
    defer_until may not pass expires_at: the hard expiry stands, whoever defers.
    """
    snapshot = escalation.policy_snapshot
    longest = timedelta(seconds=snapshot.get("max_deferral_seconds", DEFAULT_MAX_DEFERRAL_SECONDS))
    if defer_until > now + longest:
        raise ValidationFailed(f"defer_until may be at most {_duration(longest)} ahead (the policy's max_deferral_seconds)",
                               slug="deferral-too-long",
                               errors={"defer_until": [f"At most {_duration(longest)} from now."]})
    expires_at = escalation.expires_at
    if escalation.deferred_at is not None:  # deferred with its clock stopped: the expiry it would have on waking now
        expires_at += now - escalation.deferred_at
    extends = bool(snapshot.get("deferral_may_extend_expiry", False))
    if defer_until > expires_at and not extends:
        raise ValidationFailed(f"defer_until may not be after the escalation's expires_at ({expires_at.isoformat()})",
                               slug="deferral-past-expiry",
                               errors={"defer_until": [f"Not after expires_at ({expires_at.isoformat()}); the policy "
                                                       "does not let a deferral extend the expiry."]})
    return extends


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 86400} days" if seconds % 86400 == 0 else f"{seconds} seconds"


# --- check and create --------------------------------------------------------------------------

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
    route = [{"stage": i, "role": s.roles[0], "roles": list(s.roles), "approvals_required": s.approvals_required}
             for i, s in enumerate(specs)]
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


# --- acknowledge -----------------------------------------------------------------------------------

def _require_assigned(actor: Actor, escalation: Escalation, capability: str,
                      stage: ApprovalStage | None = None) -> Capacity:
    """A person with `capability` and a role of the current stage (`stage`, when the caller has it locked), in
    their own right or standing in for an away delegator (escalations.standins.decider_capacity); return how."""
    if actor.user is None:
        raise PermissionDenied("only a person of the assigned role can do this", slug="person-required")
    if not actor.can(capability):
        raise PermissionDenied(f"this needs {capability}", slug="missing-capability")
    stage = stage or current_stage(escalation.approval)
    capacity = decider_capacity(actor=actor, escalation=escalation, stage_roles=stage.eligible_roles)
    if not set(stage.eligible_roles) & capacity.roles:
        raise PermissionDenied(f"this escalation is assigned to {escalation.assigned_role}", slug="not-assigned")
    return capacity


def escalation_acknowledge(*, actor: Actor, escalation: Escalation | str) -> Escalation:
    """The assigned role takes it: stops re-escalation at this level. Refused (409) past expires_at."""
    result = _acknowledge(actor=actor, escalation=escalation)
    if isinstance(result, DomainError):
        raise result  # after the commit: the case's expiry stands
    return result


@transaction.atomic
def _acknowledge(*, actor: Actor, escalation: Escalation | str) -> Escalation | DomainError:
    escalation = lock_escalation(escalation)
    passed = deadline_passed(escalation, timezone.now())
    if passed is not None:
        return passed
    if escalation.status != EscalationStatus.PENDING:
        raise Conflict(f"only a pending escalation can be acknowledged (it is {escalation.status})",
                       slug="invalid-state")
    _require_assigned(actor, escalation, Capability.ESCALATION_ACKNOWLEDGE)
    before = audit_state(escalation)
    escalation.status = EscalationStatus.ACKNOWLEDGED
    escalation.acknowledged_by, escalation.acknowledged_at = actor.user, timezone.now()
    refresh_next_deadline(escalation)
    escalation.save()
    record_change(escalation, actor=actor, action=AuditAction.ESCALATION_ACKNOWLEDGED, before=before,
                  event=events.ESCALATION_ACKNOWLEDGED, event_extra={"acknowledged_by": actor.actor_label})
    return escalation


# --- decide ------------------------------------------------------------------------------------------

def escalation_decide(*, actor: Actor, escalation: Escalation | str, decision: str, justification: str,
                      otp: str | None, conditions: Sequence[str | dict[str, Any]] = (),
                      defer_until: datetime | None = None) -> Escalation:
    """Record an approve / reject / defer with a fresh one-time code.

    A wrong code is counted and audited (that part commits) and then refused; a refused decision
    never consumes a code, and an accepted code always has its decision.
    `escalation` may be an id, looked up in the actor's tenant (NotFound outside it). The escalation
    returned carries, as committed, what the API representation reads: its approval with the stages
    and decisions, and the related rows.
    """
    result = _decide(actor=actor, escalation=escalation, decision=decision, justification=justification, otp=otp,
                     conditions=conditions, defer_until=defer_until)
    if isinstance(result, DomainError):
        raise result
    return result


@transaction.atomic
def _decide(*, actor: Actor, escalation: Escalation | str, decision: str, justification: str, otp: str | None,
            conditions: Sequence[str | dict[str, Any]], defer_until: datetime | None) -> Escalation | DomainError:
    """1. Lock and check state and rules (no code spent). 2. Verify the code. 3. Decide and record."""
    # A condition may be a plain string (as always) or {text, owner?, due_at?}: an obligation (obligations.py).
    condition_specs = obligations.parse_specs(conditions, now=timezone.now())
    texts = [spec.text for spec in condition_specs]
    # The key that created it is joined for the response (a vendor's case, the usual one); a requesting
    # or acknowledging person is read only when there is one.
    escalation = lock_escalation(escalation, actor=actor, related=("requested_by_api_key",))
    passed = deadline_passed(escalation, timezone.now())
    if passed is not None:
        return passed
    if escalation.is_final:
        raise Conflict(f"the escalation is already {escalation.status}; decisions are final", slug="already-decided")
    validate_decision_input(decision=decision, justification=justification, conditions=texts,
                            defer_until=defer_until)
    extends_expiry = deferral_check(escalation, defer_until, timezone.now()) if defer_until else False
    approval, stage = approval_lock(escalation.approval_id)
    escalation.approval = approval  # locked, with its stages and decisions: kept current by approval_decide
    capacity = _require_assigned(actor, escalation, Capability.ESCALATION_DECIDE, stage)
    assert actor.user is not None
    approval_check_decider(request=approval, stage=stage, user=actor.user, roles=capacity.roles, decision=decision,
                           on_behalf_of=capacity.on_behalf_of, partners=capacity.partners)
    verified = stepup_verify(actor=actor, subject=stepup_subject(escalation), code=otp)
    if not verified.ok:
        assert verified.error is not None
        return verified.error

    before = audit_state(escalation)
    now = timezone.now()
    outcome = approval_decide(request=approval, stage=stage, user=actor.user, roles=capacity.roles, decision=decision,
                              justification=justification, conditions=texts, defer_until=defer_until,
                              on_behalf_of=capacity.on_behalf_of, partners=capacity.partners)
    record = outcome.decision
    decision_data = {"id": str(record.id), "decision": record.decision, "role": record.role, "stage": record.stage,
                     "decided_by": actor.actor_label, "self_approved": record.self_approved,
                     "conditions": record.conditions, "justification": record.justification,
                     "on_behalf_of": capacity.on_behalf_of.username if capacity.on_behalf_of else None}
    if record.conditions:
        obligations.conditions_add(escalation, condition_specs, record.conditions, decided_by=actor.actor_label,
                                   now=now)
    was_deferred = escalation.status == EscalationStatus.DEFERRED
    sync_from_approval(escalation, approval, outcome.opened_stage or stage)

    event: EventKind[Any]
    if outcome.request_status == ApprovalRequest.Status.APPROVED:
        close(escalation, EscalationStatus.APPROVED, now)
        event = events.ESCALATION_APPROVED
    elif outcome.request_status == ApprovalRequest.Status.REJECTED:
        close(escalation, EscalationStatus.REJECTED, now)
        event = events.ESCALATION_REJECTED
    elif record.decision == Decision.Kind.DEFER:
        if was_deferred:
            end_deferral(escalation, now)  # a deferral of a deferral: the first one's sleep ends now
        # The SLA clock stops only where the policy lets a deferral extend the expiry (end_deferral adds the
        # time slept back); otherwise expires_at stands, and defer_until is before it (deferral_check).
        escalation.deferred_at = now if extends_expiry else None
        escalation.status, escalation.defer_until = EscalationStatus.DEFERRED, record.defer_until
        event = events.ESCALATION_DEFERRED
        decision_data["extends_expiry"] = extends_expiry
    else:
        # A partial approval, or a stage completed and the next one opened.
        if outcome.opened_stage is not None:
            if was_deferred:
                end_deferral(escalation, now)
            open_for_acknowledgement(escalation, now)
        elif was_deferred:
            resume_deferred(escalation, now)  # as when its defer_until passes: back to the same role
        event = events.ESCALATION_APPROVAL_RECORDED
    refresh_next_deadline(escalation)
    escalation.save()
    record_change(escalation, actor=actor, action=AuditAction.DECISION_RECORDED, before=before, event=event,
                  details={"decision": decision_data, "otp_method": verified.method},
                  event_extra={"decision": decision_data, "stage_completed": outcome.stage_completed})
    if outcome.opened_stage is not None and escalation.status in (EscalationStatus.PENDING, EscalationStatus.ACKNOWLEDGED):
        flag_if_unstaffed(escalation, actor=actor)  # the next stage's people may all be away
    return escalation


# --- cancel and execution ---------------------------------------------------------------------------

def is_requester(actor: Actor, escalation: Escalation) -> bool:
    """Only the requester, as the same person or the same tenant API key, may cancel or report execution."""
    if actor.user is not None:
        return escalation.requested_by_user_id == actor.user.pk
    if actor.api_key is not None:
        return escalation.requested_by_api_key_id == actor.api_key.pk
    return False


@transaction.atomic
def escalation_cancel(*, actor: Actor, escalation: Escalation | str, reason: str = "") -> Escalation:
    escalation = lock_escalation(escalation)
    if not is_requester(actor, escalation):
        raise PermissionDenied("only the requester may cancel an escalation", slug="requester-only")
    if escalation.status not in OPEN_STATUSES:
        raise Conflict(f"an escalation that is {escalation.status} cannot be cancelled", slug="invalid-state")
    before = audit_state(escalation)
    approval_close(request=escalation.approval, status=ApprovalRequest.Status.CANCELLED)
    close(escalation, EscalationStatus.CANCELLED, timezone.now())
    escalation.save()
    record_change(escalation, actor=actor, action=AuditAction.ESCALATION_CANCELLED, before=before,
                  event=events.ESCALATION_CANCELLED, details={"reason": reason}, event_extra={"reason": reason})
    return escalation


def escalation_record_execution(*, actor: Actor, escalation: Escalation | str, result: dict[str, Any],
                                actual_cost: Money | None = None) -> Escalation:
    """The requester reports the approved change done: inside its execution window, with every condition met or
    waived, before the approval lapses (409 otherwise: outside-execution-window, conditions-unmet, deadline-passed).
    """
    outcome = _record_execution(actor=actor, escalation=escalation, result=result, actual_cost=actual_cost)
    if isinstance(outcome, DomainError):
        raise outcome  # after the commit: a lapse found now stands
    return outcome


@transaction.atomic
def _record_execution(*, actor: Actor, escalation: Escalation | str, result: dict[str, Any],
                      actual_cost: Money | None) -> Escalation | DomainError:
    escalation = lock_escalation(escalation)
    if not is_requester(actor, escalation):
        raise PermissionDenied("only the requester may report execution", slug="requester-only")
    now = timezone.now()
    lapsed = approval_lapsed(escalation, now)
    if lapsed is not None:
        return lapsed
    if escalation.status != EscalationStatus.APPROVED:
        raise Conflict(f"only an approved escalation can be executed (it is {escalation.status})",
                       slug="invalid-state")
    if not isinstance(result, dict):
        raise ValidationFailed("result must be an object", errors={"result": ["An object."]})
    cost_errors: dict[str, list[str]] = {}
    validate_estimated_cost(actual_cost, cost_errors, name="actual_cost")
    if cost_errors:
        raise ValidationFailed("actual_cost is invalid", errors=cost_errors)
    execution_window_check(escalation, now)
    obligations.conditions_check(escalation)
    before = audit_state(escalation)
    escalation.status = EscalationStatus.EXECUTED
    escalation.executed_at, escalation.execution_result = now, result
    if actual_cost is not None:
        escalation.actual_cost_minor, escalation.actual_cost_currency = actual_cost.value_minor, actual_cost.currency
    escalation.save()
    cost = {"value_minor": actual_cost.value_minor, "currency": actual_cost.currency} if actual_cost else None
    record_change(escalation, actor=actor, action=AuditAction.ESCALATION_EXECUTED, before=before,
                  event=events.ESCALATION_EXECUTED,
                  details={"result": result, "actual_cost": cost},
                  event_extra={"execution_result": result, "actual_cost": cost})
    return escalation


def approval_lapsed(escalation: Escalation, now: datetime) -> DomainError | None:
    """Approved but past approval_expires_at, not yet swept: the sweep's lapse applied now; 409 naming it."""
    if escalation.status != EscalationStatus.APPROVED or escalation.approval_expires_at is None \
            or escalation.approval_expires_at > now:
        return None
    from .sweeps import deadlines_apply_one  # the sweeps build on this module

    lapsed_at = escalation.approval_expires_at
    deadlines_apply_one(escalation.pk, now)
    escalation.refresh_from_db(fields=["status", "closed_at", "expiry_reason", "next_deadline_at", "updated_at"])
    return Conflict(f"the approval lapsed at approval_expires_at ({lapsed_at.isoformat()}): the escalation is now "
                    f"{escalation.status}", slug="deadline-passed",
                    extra={"deadline": "approval_expires_at", "approval_expires_at": lapsed_at.isoformat(),
                           "escalation_status": escalation.status, "expiry_reason": escalation.expiry_reason})
