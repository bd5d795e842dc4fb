"""What out-of-office means for a case (issue 19): who must act now, in what capacity a person decides, which
ladder levels are empty of anyone present, and the cases a delegate holds.

Who is away and who stands in is accounts.delegations'; this module is the one place that turns it into
routing. `who_must_act` is THE answer to "who must act on this case now" for notifications, the live queue,
push and "what is still needed": the assigned role's members and the people the stage names (issue 22), minus
those away, plus the delegates of the away ones (never a delegate's delegate: delegation is not transitive).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from accounts.actors import Actor
from accounts.delegations import (
    delegations_active,
    delegations_held,
    delegations_involving,
    delegations_sweep,
    delegator_roles,
)
from accounts.models import Delegation, Tenant, User
from accounts.selectors import role_members
from approvals.selectors import open_requests_naming
from audit.actions import AuditAction

from .models import OPEN_STATUSES, Escalation, EscalationStatus, delegated_q
from .named import named_now, stage_names

__all__ = ["Approver", "Capacity", "Staffing", "decider_capacity", "delegated_q", "held_for", "role_staffing",
           "stage_people", "standins_sweep", "unstaffed_away", "who_must_act"]

MembersOf = Callable[[Tenant, str], Sequence[User]]


@dataclass(frozen=True)
class Approver:
    """A person who must act on a case: in their own right, or standing in for `on_behalf_of`."""

    user: User
    on_behalf_of: User | None = None


def away_index(delegations: Iterable[Delegation], escalation_type: str) -> dict[int, Delegation]:
    """{delegator id: their delegation} for the delegations in force that cover `escalation_type`."""
    return {d.delegator_id: d for d in delegations if d.covers(escalation_type)}


def _with_named(members: Sequence[User], named: Sequence[User]) -> list[User]:
    """The role's members, then the named people who are not among them (each person once)."""
    seen = {m.pk for m in members}
    return [*members, *(u for u in named if u.pk not in seen)]


def who_must_act(escalation: Escalation, *, role: str | None = None, at: datetime | None = None,
                 members_of: MembersOf | None = None,
                 delegations: Sequence[Delegation] | None = None) -> list[Approver]:
    """Who must act on `escalation` now: the assigned role's (or `role`'s) members and the people the current stage
    names who are not away, then the delegates of those who are (each person once; a delegate who is away too is
    not asked: not transitive).

    The one answer for notifications, push, the live queue and "what is still needed". `members_of` and
    `delegations` (the tenant's delegations in force) let a batch ask once per tenant.
    """
    tenant = escalation.tenant
    role = role or escalation.assigned_role
    members = list(members_of(tenant, role) if members_of else role_members(tenant=tenant, role=role)) if role else []
    members = _with_named(members, named_now(escalation))
    if delegations is None:
        delegations = delegations_active(tenant=tenant, at=at)
    away = away_index(delegations, escalation.type)
    out = [Approver(user) for user in members if user.pk not in away]
    seen = {a.user.pk for a in out}
    for user in members:
        delegation = away.get(user.pk)
        if delegation is None or delegation.delegate is None:
            continue
        if delegation.delegate_id in seen or delegation.delegate_id in away:
            continue
        seen.add(delegation.delegate.pk)
        out.append(Approver(delegation.delegate, on_behalf_of=user))
    return out


@dataclass(frozen=True)
class Staffing:
    """Whether anyone present can act for a role (a member, or a delegate of an away member)."""

    staffed: bool
    away: tuple[str, ...] = ()  # usernames of the away members, when none is present and none stood in for


def role_staffing(*, tenant: Tenant, role: str, escalation_type: str, at: datetime | None = None,
                  delegations: Sequence[Delegation] | None = None) -> Staffing:
    """The ladder's question: is a level of `role` worth moving to? Not when it has no active member (as before),
    nor when every member is away with nobody standing in (issue 19): that level is skipped the same way."""
    members = list(role_members(tenant=tenant, role=role))
    if not members:
        return Staffing(staffed=False)
    if delegations is None:
        delegations = delegations_active(tenant=tenant, at=at)
    away = away_index(delegations, escalation_type)
    if any(m.pk not in away for m in members):
        return Staffing(staffed=True)
    if any(away[m.pk].delegate_id is not None and away[m.pk].delegate_id not in away for m in members):
        return Staffing(staffed=True)
    return Staffing(staffed=False, away=tuple(sorted(m.username for m in members)))


@dataclass(frozen=True)
class Capacity:
    """How a person decides a case: in which roles, on whose behalf, and with whom they count as one voter."""

    roles: frozenset[str]
    on_behalf_of: User | None
    partners: frozenset[int]
    # Decides as a person the stage names, or for one (issue 22): the route itself is the authority, as the
    # assignment is for a role's members, so the role capability is not asked of them.
    named: bool = False


def decider_capacity(*, actor: Actor, escalation: Escalation, stage_roles: Collection[str],
                     at: datetime | None = None, delegations: Sequence[Delegation] | None = None) -> Capacity:
    """Own right first (a role of the stage, or named on it); else on behalf of a delegator whose OWN roles fit
    the stage or whom the stage names (never authority the delegator holds by delegation: not transitive). The
    pair (delegator and delegate) is one voter.

    `delegations`: the tenant's delegations in force, when the caller has them (else those involving the actor
    are read, one query).
    """
    assert actor.user is not None
    me = actor.user.pk
    if delegations is None:
        delegations = delegations_involving(user=actor.user, tenant=actor.tenant, at=at)
    mine = [d for d in delegations if me in (d.delegator_id, d.delegate_id) and d.covers(escalation.type)]
    partners = frozenset(pk for d in mine for pk in (d.delegator_id, d.delegate_id) if pk is not None and pk != me)
    if set(stage_roles) & actor.roles:
        return Capacity(roles=actor.roles, on_behalf_of=None, partners=partners)
    named = {u.pk for u in named_now(escalation)}
    if me in named:
        return Capacity(roles=actor.roles, on_behalf_of=None, partners=partners, named=True)
    received = sorted((d for d in mine if d.delegate_id == me), key=lambda d: (d.starts_at, str(d.pk)))
    if not received:
        return Capacity(roles=actor.roles, on_behalf_of=None, partners=partners)
    roles = delegator_roles(delegators={d.delegator_id for d in received}, tenant=actor.tenant)
    for delegation in received:
        by_name = delegation.delegator_id in named
        if set(stage_roles) & roles[delegation.delegator_id] or by_name:
            return Capacity(roles=roles[delegation.delegator_id], on_behalf_of=delegation.delegator,
                            partners=partners | {delegation.delegator_id},
                            named=by_name and not set(stage_roles) & roles[delegation.delegator_id])
    return Capacity(roles=actor.roles, on_behalf_of=None, partners=partners)


# --- the delegate's queue ------------------------------------------------------------------------------

def held_for(actor: Actor, rows: Iterable[dict[str, Any]], *, at: datetime | None = None) -> dict[Any, User]:
    """{row id: delegator} for the queue rows `actor` holds as a delegate rather than in their own right."""
    held = delegations_held(actor=actor, at=at)
    out: dict[Any, User] = {}
    if not held:
        return out
    for row in rows:
        if row["assigned_role"] in actor.roles:
            continue
        for delegation, roles in held:
            if row["assigned_role"] in roles and delegation.covers(row["type"]):
                out[row["id"]] = delegation.delegator
                break
    # Cases whose open stage names an away delegator (issue 22): held for them too.
    named = open_requests_naming(user_ids={d.delegator_id for d, _ in held})
    by_request = {request: d for d, _ in held for request in named.get(d.delegator_id, ())}
    if by_request:
        mine = set(open_requests_naming(user_ids=[actor.user.pk]).get(actor.user.pk, ())) if actor.user else set()
        wanted = [row["id"] for row in rows if row["id"] not in out and row["assigned_role"] not in actor.roles]
        for pk, request, type_ in (Escalation.objects.filter(pk__in=wanted, approval_id__in=list(by_request))
                                   .values_list("pk", "approval_id", "type")):
            if request not in mine and by_request[request].covers(type_):
                out[pk] = by_request[request].delegator
    return out


# --- a stage only away people could satisfy ------------------------------------------------------------

def stage_people(escalation: Escalation, *, delegations: Sequence[Delegation] | None = None
                 ) -> tuple[list[Approver], tuple[str, ...]]:
    """who_must_act, and the away members' usernames when nobody present can act (members read once)."""
    if escalation.status not in (EscalationStatus.PENDING, EscalationStatus.ACKNOWLEDGED):
        return [], ()
    if delegations is None:
        delegations = delegations_active(tenant=escalation.tenant)
    role = escalation.assigned_role
    members = list(role_members(tenant=escalation.tenant, role=role)) if role else []
    people = who_must_act(escalation, members_of=lambda tenant, role: members, delegations=delegations)
    if people:
        return people, ()
    return people, _nobody_present(escalation, members)


def _nobody_present(escalation: Escalation, members: Sequence[User]) -> tuple[str, ...]:
    """Who could have acted, for a case nobody present can act on: the role's members (away) and the people the
    stage names (away, inactive or gone). () when there was nobody to name: a role with no member, as before."""
    return tuple(sorted({m.username for m in members} | set(stage_names(escalation))))


def unstaffed_away(escalation: Escalation, *, at: datetime | None = None,
                   delegations: Sequence[Delegation] | None = None) -> tuple[str, ...]:
    """The away members' usernames when the open case's role has members but nobody present to act; else ()."""
    if escalation.status not in (EscalationStatus.PENDING, EscalationStatus.ACKNOWLEDGED):
        return ()
    if stage_names(escalation):  # named people count (issue 22): present, standing in, or nobody
        if delegations is None:
            delegations = delegations_active(tenant=escalation.tenant_id, at=at)
        return stage_people(escalation, delegations=delegations)[1]
    staffing = role_staffing(tenant=escalation.tenant, role=escalation.assigned_role,
                             escalation_type=escalation.type, at=at, delegations=delegations)
    return staffing.away if not staffing.staffed else ()


def flag_if_unstaffed(escalation: Escalation, *, actor: Actor, at: datetime | None = None,
                      delegations: Sequence[Delegation] | None = None) -> bool:
    """THE rule of the unstaffed flag: an open case whose role has members but nobody present to act (all away, no
    delegate) raises escalation.unstaffed (audited, in the caller's transaction) so operators see it. Called when a
    case opens or moves to its next stage, and when a delegation starts. Returns whether it raised."""
    from notifications.outbox import catalogue as events

    from .changes import record_change

    if delegations is None:
        # The tenant in hand, when it is (its row as this request's authentication read it: accounts.tenant_config).
        tenant = escalation.tenant if Escalation.tenant.is_cached(escalation) else escalation.tenant_id
        delegations = delegations_active(tenant=tenant, at=at)
    if not delegations and not stage_names(escalation):  # nobody away, nobody named: the usual answer
        return False
    away = unstaffed_away(escalation, at=at, delegations=delegations)
    if not away:
        return False
    extra = {"role": escalation.assigned_role, "away": list(away)}
    record_change(escalation, actor=actor, action=AuditAction.ESCALATION_UNSTAFFED, before=None,
                  event=events.ESCALATION_UNSTAFFED, details=extra, event_extra=extra)
    return True


def _flag_unstaffed(delegation: Delegation, now: datetime) -> None:
    """A delegation just started: each open case of the delegator's roles, or whose stage names the delegator, that
    nobody present can act on now raises escalation.unstaffed (the sweep's on_start, in its transaction)."""
    roles = delegator_roles(delegators={delegation.delegator_id}, tenant=delegation.tenant_id)[delegation.delegator_id]
    named = open_requests_naming(user_ids=[delegation.delegator_id]).get(delegation.delegator_id, [])
    if not roles and not named:
        return
    delegations = delegations_active(tenant=delegation.tenant_id, at=now)
    cases = (Escalation.objects.select_for_update(of=("self",), skip_locked=True).select_related("tenant")
             .filter(Q(assigned_role__in=sorted(roles)) | Q(approval_id__in=named),
                     tenant_id=delegation.tenant_id, status__in=OPEN_STATUSES))
    if delegation.escalation_types:
        cases = cases.filter(type__in=list(delegation.escalation_types))
    actor = Actor.for_system(delegation.tenant, "delegation_sweep")
    for escalation in cases.order_by("pk"):
        flag_if_unstaffed(escalation, actor=actor, at=now, delegations=delegations)


def standins_sweep(*, now: datetime | None = None) -> str:
    """The periodic job: announce delegation starts and ends (accounts.delegations), flagging unstaffed cases."""
    return delegations_sweep(now=now or timezone.now(), on_start=_flag_unstaffed).summary()
