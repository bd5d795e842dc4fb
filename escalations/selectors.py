"""Reads of escalations: who may see what, the approver queue, one case with its context, a summary,
and what a case is still waiting for.

Every read is bounded in queries: lists select_related what rows print and never touch a
relation per row; the case page prefetches its route, decisions and history in one go each.
"""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Prefetch, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import User
from accounts.roles import Capability
from approvals.models import ApprovalStage, Decision
from audit.models import AuditEvent
from audit.selectors import CHAIN_ORDER
from privacy.vault import looks_like_identifier, records_matching
from trustguard.api.pagination import KeysetPagination, Page
from trustguard.errors import NotFound, PermissionDenied, ValidationFailed

from . import metrics
from .models import FINAL_STATUSES, OPEN_STATUSES, Escalation, EscalationStatus, delegated_parts, named_q
from .waiting import WaitingFor, WaitingKind, escalation_waiting_for

__all__ = ["WaitingFor", "WaitingKind", "escalation_waiting_for"]  # their home is escalations.waiting

# --- visibility ----------------------------------------------------------------------------------


def escalations_visible_to(actor: Actor) -> QuerySet[Escalation]:
    """Escalation.objects.visible_to(actor) for the API, which refuses (403) a person who may see no case at all.

    (Pages show such a person an empty queue and 404s instead: they call Escalation.objects.visible_to.)
    """
    if actor.user is not None and not (actor.can(Capability.ESCALATION_VIEW)
                                       or actor.can(Capability.ESCALATION_VIEW_ALL)) and named_q(actor) is None:
        # A person an open stage names sees those cases whatever their capabilities (issue 22).
        raise PermissionDenied("viewing escalations needs escalation.view", slug="missing-capability")
    return Escalation.objects.visible_to(actor)


def escalation_visible(*, actor: Actor, pk: Any) -> Escalation | None:
    """One escalation if `actor` may see it (None for a malformed id, another tenant's, or an invisible one)."""
    try:
        uuid.UUID(str(pk))
    except ValueError:
        return None
    return Escalation.objects.visible_to(actor).filter(pk=pk).first()


# --- the approver queue --------------------------------------------------------------------------

QUEUE_PAGE_SIZE = 25


@dataclass
class QueueFilters:
    status: str = ""
    type: str = ""
    risk: str = ""
    overdue: bool = False
    q: str = ""
    scope: str = "mine"  # mine = assigned to my roles; all = everything I may see

    @classmethod
    def from_query(cls, params: Any, default_scope: str = "mine") -> QueueFilters:
        """From request.GET; unknown values are dropped (a filter never causes an error)."""
        params = {k: str(params.get(k) or "").replace("\x00", "") for k in ("status", "risk", "type", "q", "overdue", "scope")}
        status = params.get("status", "")
        risk = params.get("risk", "")
        return cls(
            status=status if status in EscalationStatus.values or status in ("open", "closed") else "",
            type=(params.get("type") or "").strip().upper()[:64],
            risk=risk if risk in ("low", "medium", "high") else "",
            overdue=params.get("overdue") in ("1", "on", "true"),
            q=(params.get("q") or "").strip()[:200],
            scope=params.get("scope") if params.get("scope") in ("mine", "all") else default_scope,
        )


def escalation_queue(*, actor: Actor, filters: QueueFilters, now: datetime | None = None) -> QuerySet[Escalation]:
    """My queue: open escalations assigned to my roles (or everything visible), most urgent deadline first.

    Ordered by (next_deadline_at, id) with NULLs last, the key of the partial index esc_queue_idx.
    """
    now = now or timezone.now()
    qs: QuerySet[Escalation] = Escalation.objects.visible_to(actor)
    if filters.scope == "mine":
        qs = not_my_requests(qs.filter(mine_q(actor)), actor)
    if filters.status == "closed":
        qs = qs.filter(status__in=FINAL_STATUSES)
    elif filters.status and filters.status != "open":
        qs = qs.filter(status=filters.status)
    else:
        qs = qs.filter(status__in=OPEN_STATUSES)
    if filters.type:
        qs = qs.filter(type=filters.type)
    if filters.risk:
        qs = qs.filter(risk_level=filters.risk)
    if filters.overdue:
        qs = qs.filter(overdue_q(now))
    if filters.q:
        qs = qs.filter(Q(source_entity_id__icontains=filters.q) | Q(pk__in=_cases_of_contact(actor, filters.q)))
    return qs.order_by(F("next_deadline_at").asc(nulls_last=True), "id")


def mine_q(actor: Actor) -> Q:
    """"Waiting for you": assigned to one of my roles, named on its open stage (issue 22), or held as a delegate for
    someone away (standins)."""
    named = named_q(actor)
    return functools.reduce(operator.or_, [*delegated_parts(actor), *([named] if named is not None else [])],
                            Q(assigned_role__in=sorted(actor.roles)))


def mine_branches(actor: Actor) -> list[Q]:
    """mine_q as one Q per range of the queue index (tenant, role, deadline, id): each of my roles, each role I hold
    for someone away, and the cases whose open stage names me (issue 22). The paginator walks them one by one and merges
    (an IN over roles would be read and sorted)."""
    named = named_q(actor)
    return ([Q(assigned_role=role) for role in sorted(actor.roles)] + delegated_parts(actor)
            + ([named] if named is not None else []))


def _cases_of_contact(actor: Actor, text: str) -> list[str]:
    """Cases whose customer the search text names by email or phone: found by blind index (privacy.vault)."""
    named = looks_like_identifier(text)
    if named is None:
        return []
    return records_matching(tenant_id=actor.tenant.pk, record_type="escalation", **{named[0]: named[1]})


def overdue_q(now: datetime) -> Q:
    """Open and past a deadline: unacknowledged past ack_due_at, or undecided past expires_at."""
    return (Q(status=EscalationStatus.PENDING, ack_due_at__lt=now)
            | Q(status__in=(EscalationStatus.PENDING, EscalationStatus.ACKNOWLEDGED), expires_at__lt=now))


PENDING_BADGE_CAP = 999  # the header badge says "999+" beyond this


def pending_count(*, actor: Actor) -> int:
    """Open escalations waiting for one of my roles (the badge in the header), counted up to
    PENDING_BADGE_CAP + 1: the badge is polled by every open dashboard, so its cost must not grow
    with the queue (a COUNT over 250,000 queued rows takes ~0.5 s; this stops at 1,000 index entries)."""
    if not actor.roles:
        return 0
    return not_my_requests(Escalation.objects.visible_to(actor).filter(
        mine_q(actor), status__in=(EscalationStatus.PENDING, EscalationStatus.ACKNOWLEDGED)
    ), actor)[:PENDING_BADGE_CAP + 1].count()


def not_my_requests(qs: QuerySet[Escalation], actor: Actor) -> QuerySet[Escalation]:
    """"Waiting for you" never counts what you asked for yourself (four eyes: you could not decide it anyway)."""
    return qs.exclude(requested_by_user=actor.user) if actor.user is not None else qs


# What a queue card prints (dashboard.queue_cards) and the cursor needs, and nothing else: the rows'
# JSON columns (payload, contact, policy snapshot, ...) and the policy's rules are most of what a row
# weighs, and decoding them for 26 rows was a good part of the page's CPU. The page reads them as
# plain rows (.values()): building 52 model instances cost about as much as formatting the cards.
QUEUE_CARD_FIELDS = (
    "id", "policy__name", "type", "reason", "source_system", "source_entity_type", "source_entity_id",
    "amount_minor", "currency", "risk_level", "urgency", "status", "assigned_role", "escalation_level",
    "approvals_required", "approvals_received", "ack_due_at", "expires_at", "defer_until",
    "next_deadline_at", "created_at",
    "estimated_cost_minor", "estimated_cost_currency", "window_starts_at", "window_ends_at",
)


def paginate_queue(qs: QuerySet[Escalation], *, cursor: str = "", size: int = QUEUE_PAGE_SIZE,
                   branches: Sequence[Q] = ()) -> Page:
    """One page of the queue's cards on the one keyset paginator, (next_deadline_at NULLS LAST, id); `branches`:
    queue_branches, for the queue of several roles."""
    paginator, fields = KeysetPagination(key="next_deadline_at"), QUEUE_CARD_FIELDS
    try:
        return paginator.page_of(qs, cursor=cursor, limit=size, branches=branches, fields=fields)
    except ValidationFailed:  # a mangled "Load more" link: the queue from the top, never an error page
        return paginator.page_of(qs, limit=size, branches=branches, fields=fields)


def queue_branches(*, actor: Actor, mine: bool) -> list[Q]:
    """How the paginator walks a list of "mine" (the dashboard's scope=mine, the API's ?mine=true): by range."""
    return mine_branches(actor) if mine and actor.user is not None else []


def queue_types(*, actor: Actor) -> list[str]:
    """The escalation types of the tenant's active policies (for the type filter)."""
    from .models import Policy

    return list(Policy.objects.filter(tenant=actor.tenant, is_active=True).order_by("type").values_list("type", flat=True))


# --- one case ------------------------------------------------------------------------------------


def escalation_for_page(*, actor: Actor, pk: Any) -> Escalation | None:
    """One visible escalation with everything its page prints, in a fixed number of queries."""
    try:
        uuid.UUID(str(pk))
    except ValueError:
        return None
    return (
        Escalation.objects.visible_to(actor)
        .select_related("tenant", "approval", "policy", "acknowledged_by", "requested_by_user", "requested_by_api_key")
        .prefetch_related(
            Prefetch("approval__stages", queryset=ApprovalStage.objects.order_by("index")),
            Prefetch("approval__decisions", queryset=Decision.objects.select_related("decided_by", "on_behalf_of")
                     .order_by("decided_at", "id")),
        )
        .filter(pk=pk)
        .first()
    )


def escalation_history(escalation: Escalation, limit: int = 200) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(tenant_id=escalation.tenant_id, target_type="escalation",
                                          target_id=str(escalation.pk)).order_by("created_at", *CHAIN_ORDER)[:limit])


# --- summary -------------------------------------------------------------------------------------


@dataclass
class Summary:
    by_status: list[tuple[str, int]] = field(default_factory=list)
    my_overdue: int = 0
    median_decision_seconds: float | None = None
    decided_count: int = 0
    sla_breaches: int = 0
    daily_created: list[tuple[str, int]] = field(default_factory=list)


SUMMARY_WINDOW = timedelta(days=30)


def escalation_summary(*, actor: Actor, now: datetime | None = None) -> Summary:
    """Counts by status, my overdue items, median time to decision and SLA breaches (cases of the last 30 days).

    The timings and breaches are escalations.metrics' figures, as the operator report (/reports/summary)
    computes them for the same cases.
    """
    now = now or timezone.now()
    visible = Escalation.objects.visible_to(actor)
    counts = dict(visible.order_by().values_list("status").annotate(n=Count("id")))
    summary = Summary(by_status=[(s, counts.get(s, 0)) for s in EscalationStatus.values])
    if actor.roles:
        summary.my_overdue = visible.filter(overdue_q(now), assigned_role__in=actor.roles).count()
    recent = visible.filter(created_at__gte=now - SUMMARY_WINDOW)
    decisions = metrics.time_to_decision(recent)
    summary.decided_count = int(decisions["count"] or 0)
    summary.median_decision_seconds = decisions["median_seconds"]
    summary.sla_breaches = metrics.sla_breaches(recent, tenant_id=actor.tenant.pk)
    per_day = dict(recent.annotate(day=TruncDate("created_at")).order_by().values_list("day").annotate(n=Count("id")))
    days = [timezone.localdate(now - timedelta(days=i)) for i in range(13, -1, -1)]
    summary.daily_created = [(d.strftime("%-d %b"), per_day.get(d, 0)) for d in days]
    return summary


# --- the API's querysets (escalations.api) -------------------------------------------------------

def with_api_relations(queryset: QuerySet[Escalation]) -> QuerySet[Escalation]:
    """Everything the API representation reads, in a constant number of queries (no N+1)."""
    # The policy snapshot and the customer contact are not part of the representation: not loading
    # (and JSON-decoding) them halves the cost of a 100-row page.
    return queryset.defer("policy_snapshot", "contact").select_related(
        "tenant", "approval", "acknowledged_by", "requested_by_user", "requested_by_api_key").prefetch_related(
        "approval__stages", Prefetch("approval__stages__people", queryset=User.objects.only("id", "username")),
        Prefetch("approval__decisions", queryset=Decision.objects.select_related("decided_by", "on_behalf_of")
                 .order_by("decided_at", "id")),
    )


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
    escalation = Escalation.objects.actionable_by(actor).filter(pk=_parse_id(escalation_id)).first()
    if escalation is None:
        raise NotFound("no such escalation", slug="not-found")
    return escalation


def escalation_list(*, actor: Actor, status: str | None = None, type: str | None = None,
                    assigned_role: str | None = None, risk_level: str | None = None,
                    source_entity_id: str | None = None, created_after: datetime | None = None,
                    created_before: datetime | None = None, mine: bool = False, contact_email: str | None = None,
                    contact_phone: str | None = None) -> QuerySet[Escalation]:
    """Visible escalations, filtered; `mine` = assigned to one of the person's roles."""
    queryset = escalations_visible_to(actor=actor)
    if contact_email is not None or contact_phone is not None:  # the customer, by blind index (privacy.vault)
        queryset = queryset.filter(pk__in=records_matching(tenant_id=actor.tenant.pk, record_type="escalation",
                                                           email=contact_email or "", phone=contact_phone or ""))
    filters: dict[str, Any] = {"status": status, "type": type, "assigned_role": assigned_role,
                               "risk_level": risk_level, "source_entity_id": source_entity_id,
                               "created_at__gte": created_after, "created_at__lt": created_before}
    queryset = queryset.filter(**{name: value for name, value in filters.items() if value is not None})
    if mine and actor.user is not None:
        queryset = queryset.filter(mine_q(actor))
    return with_api_relations(queryset)


HIDDEN_HISTORY_PREFIXES = ("otp.",)  # second-factor failures are security events: /audit shows them


def escalation_events(*, escalation: Escalation) -> QuerySet[AuditEvent]:
    """The audit events of one escalation, oldest first (the API's `history`)."""
    queryset = AuditEvent.objects.filter(tenant_id=escalation.tenant_id, target_type="escalation",
                                         target_id=str(escalation.pk)).order_by(*CHAIN_ORDER)
    for prefix in HIDDEN_HISTORY_PREFIXES:
        queryset = queryset.exclude(action__startswith=prefix)
    return queryset
