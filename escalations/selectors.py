"""Reads of escalations: who may see which, what each waits for, and the querysets the API (and dashboard) serialize.

Visibility, in one place:
- a tenant API key sees only the escalations it requested;
- a person with escalation.view_all sees all of the tenant's;
- a person with only escalation.view sees those assigned to one of their roles (and their own requests);
- anyone else may see none (403); an object of another tenant, or one not visible, is 404.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.actors import Actor
from accounts.roles import Capability
from accounts.selectors import role_has_active_member
from approvals.models import Decision
from audit.models import AuditEvent
from trustguard.errors import NotFound, PermissionDenied

from .ladder import next_ladder_step
from .models import Escalation, EscalationStatus

# --- what is still needed (issue 3) ------------------------------------------------------------------


class WaitingKind:
    ACKNOWLEDGEMENT = "acknowledgement"  # pending: the assigned role must take it before ack_due_at
    DECISION = "decision"  # acknowledged, or overdue at the top of the ladder: a person must decide
    DEFERRAL = "deferral"  # deferred: nothing until defer_until, then back to the same role
    NOTHING = "nothing"  # final


@dataclass(frozen=True)
class WaitingFor:
    kind: str  # a WaitingKind value
    role: str | None  # who is being asked now
    approvals_missing: int  # at the current stage
    deadline: datetime | None  # when the next automatic step happens (re-escalation, alert, expiry, wake-up)
    next_role: str | None  # who is asked next if nobody acknowledges by `deadline` (same ladder as the sweep)
    sentence: str


def _at(moment: datetime) -> str:
    local, today = timezone.localtime(moment), timezone.localdate()
    return local.strftime("%H:%M" if local.date() == today else "%d %b %Y %H:%M")


def _approvals(missing: int, role: str) -> str:
    return f"{missing} more approval{'s' if missing != 1 else ''} from {role}"


def escalation_waiting_for(escalation: Escalation) -> WaitingFor:
    """What the escalation waits for, from whom, and what happens automatically if nothing does."""
    role = escalation.assigned_role
    missing = max(0, escalation.approvals_required - escalation.approvals_received)
    if escalation.is_final:
        return WaitingFor(kind=WaitingKind.NOTHING, role=None, approvals_missing=0, deadline=None, next_role=None,
                          sentence=f"nothing: the escalation is {escalation.status}")
    need = _approvals(missing, role)
    if escalation.status == EscalationStatus.DEFERRED:
        until = escalation.defer_until
        return WaitingFor(kind=WaitingKind.DEFERRAL, role=role, approvals_missing=missing, deadline=until,
                          next_role=None,
                          sentence=f"deferred until {_at(until) if until else 'a later date'}; then {need}")
    if escalation.status == EscalationStatus.ACKNOWLEDGED:
        return WaitingFor(kind=WaitingKind.DECISION, role=role, approvals_missing=missing,
                          deadline=escalation.expires_at, next_role=None,
                          sentence=f"{need}; expires at {_at(escalation.expires_at)} if not decided")
    # Pending: the sweep's own ladder logic says what happens at ack_due_at.
    step = next_ladder_step(snapshot=escalation.policy_snapshot, assigned_role=role,
                            level=escalation.escalation_level,
                            has_active_member=lambda r: role_has_active_member(tenant=escalation.tenant, role=r))
    due = escalation.ack_due_at
    if step.role is not None and due is not None:
        return WaitingFor(kind=WaitingKind.ACKNOWLEDGEMENT, role=role, approvals_missing=missing, deadline=due,
                          next_role=step.role,
                          sentence=f"{need}; re-escalates to {step.role} at {_at(due)} if not acknowledged")
    if escalation.top_alerted_at is not None or (due is not None and due <= timezone.now()):
        return WaitingFor(kind=WaitingKind.DECISION, role=role, approvals_missing=missing,
                          deadline=escalation.expires_at, next_role=None,
                          sentence=f"{need}; overdue at the top of the ladder: waits for a manual decision "
                                   f"(expires at {_at(escalation.expires_at)})")
    return WaitingFor(kind=WaitingKind.ACKNOWLEDGEMENT, role=role, approvals_missing=missing, deadline=due,
                      next_role=None,
                      sentence=f"{need}; top of the ladder: an alert goes out at "
                               f"{_at(due) if due else 'the deadline'} if not acknowledged")


# --- visibility and the API's querysets -----------------------------------------------------------

def with_api_relations(queryset: QuerySet[Escalation]) -> QuerySet[Escalation]:
    """Everything the API representation reads, in a constant number of queries (no N+1)."""
    # The policy snapshot and the customer contact are not part of the representation: not loading
    # (and JSON-decoding) them halves the cost of a 100-row page.
    return queryset.defer("policy_snapshot", "contact").select_related(
        "tenant", "approval", "acknowledged_by", "requested_by_user", "requested_by_api_key").prefetch_related(
        "approval__stages",
        Prefetch("approval__decisions", queryset=Decision.objects.select_related("decided_by").order_by("decided_at", "id")),
    )


def escalations_visible_to(*, actor: Actor) -> QuerySet[Escalation]:
    """The escalations `actor` may see. PermissionDenied (403) when that is none at all."""
    base = Escalation.objects.filter(tenant=actor.tenant)
    if actor.api_key is not None:
        return base.filter(requested_by_api_key=actor.api_key)
    if actor.user is not None:
        if actor.can(Capability.ESCALATION_VIEW_ALL):
            return base
        if actor.can(Capability.ESCALATION_VIEW):
            return base.filter(Q(assigned_role__in=sorted(actor.roles)) | Q(requested_by_user=actor.user))
        raise PermissionDenied("viewing escalations needs escalation.view", slug="missing-capability")
    return base  # a system job acts for the whole tenant


def _parse_id(escalation_id: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(escalation_id))
    except ValueError:
        raise NotFound("no such escalation", slug="not-found") from None


def escalation_get(*, actor: Actor, escalation_id: Any) -> Escalation:
    """One visible escalation with its API relations; 404 if absent, of another tenant, or not visible."""
    pk = _parse_id(escalation_id)
    escalation = with_api_relations(escalations_visible_to(actor=actor)).filter(pk=pk).first()
    if escalation is None:
        raise NotFound("no such escalation", slug="not-found")
    return escalation


def escalation_for_action(*, actor: Actor, escalation_id: Any) -> Escalation:
    """The escalation an action names, before the service's own authorisation.

    A key is confined to its own requests (404 otherwise); a person to their tenant, so that a
    colleague of the wrong role gets the service's precise 403 instead of a 404.
    """
    pk = _parse_id(escalation_id)
    queryset = Escalation.objects.filter(tenant=actor.tenant, pk=pk)
    if actor.api_key is not None:
        queryset = queryset.filter(requested_by_api_key=actor.api_key)
    escalation = queryset.first()
    if escalation is None:
        raise NotFound("no such escalation", slug="not-found")
    return escalation


def escalation_list(*, actor: Actor, status: str | None = None, type: str | None = None,
                    assigned_role: str | None = None, risk_level: str | None = None,
                    source_entity_id: str | None = None, created_after: datetime | None = None,
                    created_before: datetime | None = None, mine: bool = False) -> QuerySet[Escalation]:
    """Visible escalations, filtered; `mine` = assigned to one of the person's roles."""
    queryset = escalations_visible_to(actor=actor)
    filters: dict[str, Any] = {"status": status, "type": type, "assigned_role": assigned_role,
                               "risk_level": risk_level, "source_entity_id": source_entity_id,
                               "created_at__gte": created_after, "created_at__lt": created_before}
    queryset = queryset.filter(**{name: value for name, value in filters.items() if value is not None})
    if mine and actor.user is not None:
        queryset = queryset.filter(assigned_role__in=sorted(actor.roles))
    return with_api_relations(queryset)


HIDDEN_HISTORY_PREFIXES = ("otp.",)  # second-factor failures are security events: /audit shows them


def escalation_history(*, escalation: Escalation) -> QuerySet[AuditEvent]:
    """The audit events of one escalation, oldest first."""
    queryset = AuditEvent.objects.filter(tenant_id=escalation.tenant_id, target_type="escalation",
                                         target_id=str(escalation.pk)).order_by("seq")
    for prefix in HIDDEN_HISTORY_PREFIXES:
        queryset = queryset.exclude(action__startswith=prefix)
    return queryset
