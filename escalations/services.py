"""The escalation lifecycle: check, create (escalations.creation), acknowledge, decide, cancel, record execution.

Each top-level service is one transaction: lock the escalation, re-check state on the locked
row, change it (escalations.changes), save it and record the change: the outbox event and the audit
event (audit last: it takes the tenant's chain lock, held until commit). Network work is left to the
relay after commit.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.roles import Capability
from accounts.stepup import StepUpSubject, stepup_verify
from approvals.models import ApprovalRequest, ApprovalStage, Decision
from approvals.services import (
    approval_check_decider,
    approval_close,
    approval_decide,
    approval_lock,
    current_stage,
    validate_decision_input,
)
from audit.actions import AuditAction
from notifications.outbox import catalogue as events
from notifications.outbox.catalogue import EventKind
from trustguard.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from trustguard.jsonutil import canonical_json

from . import obligations
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
from .creation import escalation_check, escalation_create
from .intake import (
    CheckResult,
    Money,
    SourceRef,
    validate_estimated_cost,
)
from .models import DEFAULT_MAX_DEFERRAL_SECONDS, OPEN_STATUSES, Escalation, EscalationStatus
from .schedule import execution_window_check
from .standins import Capacity, decider_capacity, flag_if_unstaffed

# The request's parts and the creation services (escalations.creation), as callers have always imported them.
__all__ = ["CheckResult", "Money", "SourceRef", "escalation_check", "escalation_create"]


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
                    related: Sequence[str] = ("tenant",), lock_approval: bool = False) -> Escalation:
    """Lock the escalation's row, reading the `related` rows with it (read, not locked).

    With `lock_approval`, its approval request's row is locked in the same statement (a decision: one statement,
    not two; approvals.services.approval_lock then takes the request as it is).

    Only the escalation's row: a plain FOR UPDATE would lock the joined tenant row too, and with it
    serialise every action of the tenant (and block each insert that references the tenant).
    With `actor`, an id is looked up among the cases the actor may act on (Escalation.objects.actionable_by;
    NotFound otherwise) in the same query, and the escalation's tenant is the actor's, already in hand.
    """
    if lock_approval:
        queryset = Escalation.objects.select_for_update(of=("self", "approval")).select_related(*related, "approval")
    else:
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


# --- acknowledge -----------------------------------------------------------------------------------

def _require_assigned(actor: Actor, escalation: Escalation, capability: str,
                      stage: ApprovalStage | None = None) -> Capacity:
    """A person with `capability` and a role of the current stage (`stage`, when the caller has it locked), in
    their own right or standing in for an away delegator (escalations.standins.decider_capacity); return how."""
    if actor.user is None:
        raise PermissionDenied("only a person of the assigned role can do this", slug="person-required")
    stage = stage or current_stage(escalation.approval)
    capacity = decider_capacity(actor=actor, escalation=escalation, stage_roles=stage.eligible_roles)
    if not actor.can(capability) and not capacity.named:  # a person the route names needs no role capability
        raise PermissionDenied(f"this needs {capability}", slug="missing-capability")
    if not set(stage.eligible_roles) & capacity.roles and not capacity.named:
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
    escalation = lock_escalation(escalation, actor=actor, related=("requested_by_api_key",), lock_approval=True)
    passed = deadline_passed(escalation, timezone.now())
    if passed is not None:
        return passed
    if escalation.is_final:
        raise Conflict(f"the escalation is already {escalation.status}; decisions are final", slug="already-decided")
    validate_decision_input(decision=decision, justification=justification, conditions=texts,
                            defer_until=defer_until)
    extends_expiry = deferral_check(escalation, defer_until, timezone.now()) if defer_until else False
    approval, stage = approval_lock(escalation.approval)
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
