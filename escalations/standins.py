"""What out-of-office means for a case (issue 19): who must act now, in what capacity a person decides, which
ladder levels are empty of anyone present, and the cases a delegate holds.

Who is away and who stands in is accounts.delegations'; this module is the one place that turns it into
routing. `who_must_act` is THE answer to "who must act on this case now" for notifications, the live queue,
push and "what is still needed": the assigned role's members, minus those away, plus the delegates of the
away ones (never a delegate's delegate: delegation is not transitive).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
from audit.actions import AuditAction

from .models import OPEN_STATUSES, Escalation, EscalationStatus, delegated_q

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


def who_must_act(escalation: Escalation, *, role: str | None = None, at: datetime | None = None,
                 members_of: MembersOf | None = None,
                 delegations: Sequence[Delegation] | None = None) -> list[Approver]:
    """Who must act on `escalation` now: the assigned role's (or `role`'s) members who are not away, then the
    delegates of those who are (each person once; a delegate who is away too is not asked: not transitive).

    The one answer for notifications, push, the live queue and "what is still needed". `members_of` and
    `delegations` (the tenant's delegations in force) let a batch ask once per tenant.
    """
    tenant = escalation.tenant
    role = role or escalation.assigned_role
    members = list(members_of(tenant, role) if members_of else role_members(tenant=tenant, role=role))
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


def decider_capacity(*, actor: Actor, escalation: Escalation, stage_roles: Collection[str],
                     at: datetime | None = None, delegations: Sequence[Delegation] | None = None) -> Capacity:
    """Own right first; else on behalf of a delegator whose OWN roles fit the stage (never authority the
    delegator holds by delegation: not transitive). The pair (delegator and delegate) is one voter.

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
    received = sorted((d for d in mine if d.delegate_id == me), key=lambda d: (d.starts_at, str(d.pk)))
    if not received:
        return Capacity(roles=actor.roles, on_behalf_of=None, partners=partners)
    roles = delegator_roles(delegators={d.delegator_id for d in received}, tenant=actor.tenant)
    for delegation in received:
        if set(stage_roles) & roles[delegation.delegator_id]:
            return Capacity(roles=roles[delegation.delegator_id], on_behalf_of=delegation.delegator,
                            partners=partners | {delegation.delegator_id})
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
    return out


# --- a stage only away people could satisfy ------------------------------------------------------------

def stage_people(escalation: Escalation, *, delegations: Sequence[Delegation] | None = None
                 ) -> tuple[list[Approver], tuple[str, ...]]:
    """who_must_act, and the away members' usernames when nobody present can act (members read once)."""
    if escalation.status not in (EscalationStatus.PENDING, EscalationStatus.ACKNOWLEDGED):
        return [], ()
    if delegations is None:
        delegations = delegations_active(tenant=escalation.tenant)
    members = list(role_members(tenant=escalation.tenant, role=escalation.assigned_role))
    people = who_must_act(escalation, members_of=lambda tenant, role: members, delegations=delegations)
    away = tuple(sorted(m.username for m in members)) if members and not people else ()
    return people, away


def unstaffed_away(escalation: Escalation, *, at: datetime | None = None,
                   delegations: Sequence[Delegation] | None = None) -> tuple[str, ...]:
    """The away members' usernames when the open case's role has members but nobody present to act; else ()."""
    if escalation.status not in (EscalationStatus.PENDING, EscalationStatus.ACKNOWLEDGED):
        return ()
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
    if not delegations:  # nobody is away in this tenant: one query, and the usual answer
        return False
    away = unstaffed_away(escalation, at=at, delegations=delegations)
    if not away:
        return False
    extra = {"role": escalation.assigned_role, "away": list(away)}
    record_change(escalation, actor=actor, action=AuditAction.ESCALATION_UNSTAFFED, before=None,
                  event=events.ESCALATION_UNSTAFFED, details=extra, event_extra=extra)
    return True


def _flag_unstaffed(delegation: Delegation, now: datetime) -> None:
    """A delegation just started: each open case of the delegator's roles that nobody present can act on now
    raises escalation.unstaffed (the sweep's on_start, in its transaction)."""
    roles = delegator_roles(delegators={delegation.delegator_id}, tenant=delegation.tenant_id)[delegation.delegator_id]
    if not roles:
        return
    delegations = delegations_active(tenant=delegation.tenant_id, at=now)
    cases = (Escalation.objects.select_for_update(of=("self",), skip_locked=True).select_related("tenant")
             .filter(tenant_id=delegation.tenant_id, assigned_role__in=sorted(roles), status__in=OPEN_STATUSES))
    if delegation.escalation_types:
        cases = cases.filter(type__in=list(delegation.escalation_types))
    actor = Actor.for_system(delegation.tenant, "delegation_sweep")
    for escalation in cases.order_by("pk"):
        flag_if_unstaffed(escalation, actor=actor, at=now, delegations=delegations)


def standins_sweep(*, now: datetime | None = None) -> str:
    """The periodic job: announce delegation starts and ends (accounts.delegations), flagging unstaffed cases."""
    return delegations_sweep(now=now or timezone.now(), on_start=_flag_unstaffed).summary()
