"""Who stands in for whom: out-of-office periods and their delegates (issue 19; CONTRACT.md section 5).

The rules of a delegation live here: at most MAX_DAYS long, on the minute in the tenant's time zone, no two
overlapping periods of one delegator (409), never to oneself, the delegate an active decider of the same
tenant, and never transitive: what a delegate may do for a delegator is read from the delegator's OWN
memberships (delegator_roles), so a chain A->B->C never hands A's work to C.

What a delegation means for a decision (on whose behalf, four eyes for both, the pair counting once) is the
engine's: escalations.standins and approvals.services. Start and end are data: `delegations_sweep` (a
periodic job) announces them once each through started_at / ended_at; no Celery ETA per row.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from notifications.outbox import catalogue as events
from notifications.outbox.emit import event_emit
from trustguard.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

from .actors import Actor
from .models import Delegation, Membership, Tenant, User
from .roles import Capability
from .selectors import user_authority, zone_of
from .tenant_config import tenant_cached

MAX_DAYS = 90
MAX_TYPES = 50


# --- time --------------------------------------------------------------------------------------------

def on_the_minute(value: datetime, tenant: Tenant, user: User | None = None) -> datetime:
    """`value` read in the person's zone (accounts.selectors.zone_of) when it has none ("2026-12-24T09:00" is
    09:00 there), seconds dropped."""
    zone = zone_of(tenant=tenant, user=user)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, zone)
    return value.astimezone(zone).replace(second=0, microsecond=0)


# --- reads ---------------------------------------------------------------------------------------------

# How far back the cached windows reach: asked about an earlier moment, the delegations are read.
_WINDOWS_REACH = timedelta(days=1)


def _anyone_away(tenant: Tenant | int, at: datetime) -> bool:
    """Whether any delegation of the tenant may be in force at `at`, from the windows cached per process
    (accounts.tenant_config: every save of a delegation but its start and end marks replaces the generation).
    Nearly always False, and then the question costs one primary-key read instead of a query with two joins."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk

    def load() -> tuple[datetime, tuple[tuple[datetime, datetime], ...]]:
        since = timezone.now() - _WINDOWS_REACH
        return since, tuple(Delegation.objects.filter(tenant_id=tenant_id, revoked_at__isnull=True, ends_at__gt=since)
                            .values_list("starts_at", "ends_at"))

    since, windows = tenant_cached(tenant, "accounts.delegation_windows", load)
    return at < since or any(starts <= at < ends for starts, ends in windows)


def _live(tenant: Tenant | int, at: datetime) -> QuerySet[Delegation]:
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    return Delegation.objects.filter(tenant_id=tenant_id, revoked_at__isnull=True, starts_at__lte=at, ends_at__gt=at)


def delegations_active(*, tenant: Tenant | int, at: datetime | None = None) -> list[Delegation]:
    """The tenant's delegations in force at `at` (now), with delegator and delegate."""
    at = at or timezone.now()
    if not _anyone_away(tenant, at):
        return []
    return list(_live(tenant, at).select_related("delegator", "delegate"))


def delegations_received(*, user: User, tenant: Tenant | int, at: datetime | None = None) -> list[Delegation]:
    """The delegations in force in which `user` stands in for someone, oldest start first."""
    return list(_live(tenant, at or timezone.now()).filter(delegate=user).select_related("delegator")
                .order_by("starts_at", "pk"))


def delegation_of_away(*, user: User, tenant: Tenant | int, at: datetime | None = None) -> Delegation | None:
    """The delegation that has `user` away now, if any (at most one: periods of one delegator never overlap)."""
    return _live(tenant, at or timezone.now()).filter(delegator=user).select_related("delegate").first()


def delegations_involving(*, user: User, tenant: Tenant | int, at: datetime | None = None) -> list[Delegation]:
    """The delegations in force in which `user` is the delegator or the delegate (with the delegator)."""
    at = at or timezone.now()
    if not _anyone_away(tenant, at):
        return []
    return list(_live(tenant, at).filter(Q(delegator=user) | Q(delegate=user))
                .select_related("delegator"))


def delegator_roles(*, delegators: Collection[int], tenant: Tenant | int) -> dict[int, frozenset[str]]:
    """Each delegator's OWN roles (active memberships): what a delegate may stand in for.

    Never what the delegator holds through a delegation of their own: that is what keeps delegation
    from being transitive.
    """
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    roles: dict[int, set[str]] = {pk: set() for pk in delegators}
    for user_id, role in Membership.objects.filter(tenant_id=tenant_id, user_id__in=list(delegators), is_active=True,
                                                   user__is_active=True).values_list("user_id", "role"):
        roles[user_id].add(role)
    return {pk: frozenset(r) for pk, r in roles.items()}


def delegations_in_force(*, actor: Actor) -> list[Delegation]:
    """The actor's tenant's delegations in force now, read once per actor (one request): the page's banner, the
    queue, the case page and the decision all ask it."""
    cached = actor.__dict__.get("_delegations_in_force")
    if cached is None:
        cached = delegations_active(tenant=actor.tenant)
        actor.__dict__["_delegations_in_force"] = cached
    return cast(list[Delegation], cached)


def delegations_held(*, actor: Actor, at: datetime | None = None) -> list[tuple[Delegation, frozenset[str]]]:
    """The delegations `actor` stands in for (now, or at `at`), each with the delegator's own roles
    (delegator_roles); read once per actor when asked about now."""
    if actor.user is None:
        return []
    cached = actor.__dict__.get("_delegations_held") if at is None else None
    if cached is not None:
        return cast(list[tuple[Delegation, frozenset[str]]], cached)
    if at is None:
        received = sorted((d for d in delegations_in_force(actor=actor) if d.delegate_id == actor.user.pk),
                          key=lambda d: (d.starts_at, str(d.pk)))
    else:
        received = delegations_received(user=actor.user, tenant=actor.tenant, at=at)
    roles = delegator_roles(delegators={d.delegator_id for d in received}, tenant=actor.tenant) if received else {}
    held = [(d, roles[d.delegator_id]) for d in received if roles[d.delegator_id]]
    if at is None:
        actor.__dict__["_delegations_held"] = held
    return held


def delegations_of(*, actor: Actor) -> QuerySet[Delegation]:
    """What GET /delegations lists: mine as delegator or as delegate (an operator with
    delegation.manage_others: also those they created for others), newest first."""
    assert actor.user is not None
    mine = Q(delegator=actor.user) | Q(delegate=actor.user)
    if actor.can(Capability.DELEGATION_MANAGE_OTHERS):
        mine |= Q(created_by=actor.user)
    return (Delegation.objects.filter(mine, tenant=actor.tenant).select_related("delegator", "delegate")
            .order_by("-starts_at", "-created_at"))


def eligible_delegates(*, tenant: Tenant, exclude: User | None = None) -> list[User]:
    """People of the tenant who may stand in: active members who decide escalations themselves."""
    people = (User.objects.filter(memberships__tenant=tenant, memberships__is_active=True, is_active=True)
              .distinct().order_by("username"))
    return [u for u in people if (exclude is None or u.pk != exclude.pk)
            and Capability.ESCALATION_DECIDE in user_authority(user=u, tenant=tenant)[1]]


# --- writes --------------------------------------------------------------------------------------------

def _audit_state(delegation: Delegation) -> dict[str, Any]:
    return {"delegator": delegation.delegator.username,
            "delegate": delegation.delegate.username if delegation.delegate else None,
            "starts_at": delegation.starts_at, "ends_at": delegation.ends_at,
            "escalation_types": list(delegation.escalation_types),
            "revoked_at": delegation.revoked_at}


def _event_data(delegation: Delegation, now: datetime) -> events.DelegationData:
    return {"id": str(delegation.pk), "delegator": delegation.delegator.username,
            "delegate": delegation.delegate.username if delegation.delegate else None,
            "starts_at": delegation.starts_at, "ends_at": delegation.ends_at,
            "escalation_types": list(delegation.escalation_types), "status": delegation.status_at(now)}


def _record(delegation: Delegation, *, actor: Any, action: AuditAction, event: events.EventKind[Any],
            before: dict[str, Any] | None, now: datetime) -> None:
    """The outbox event and the audit row of one change, in the caller's transaction (audit last: chain lock)."""
    event_emit(event(tenant_id=delegation.tenant_id, aggregate_id=delegation.pk, data=_event_data(delegation, now)))
    audit_record(tenant_id=delegation.tenant_id, action=action, actor=actor, target_type="delegation",
                 target_id=delegation.pk, before=before, after=_audit_state(delegation))


@dataclass(frozen=True)
class DelegationInput:
    """What a person asks for, before the rules (times may be naive: the tenant's zone)."""

    delegate: User | None
    starts_at: datetime
    ends_at: datetime
    escalation_types: Sequence[str] = ()


def _member(tenant: Tenant, user: User) -> bool:
    return Membership.objects.filter(tenant=tenant, user=user, is_active=True, user__is_active=True).exists()


def delegation_create(*, actor: Actor, delegator: User, wanted: DelegationInput,
                      known_types: Collection[str]) -> Delegation:
    """Set `delegator` away (with `wanted.delegate`, or nobody, standing in).

    1. Authorise: the delegator themself, or a person with delegation.manage_others for someone of the tenant.
    2. Check every field (400 naming it): times on the minute in the tenant's zone, end after start and
       in the future, at most MAX_DAYS; the delegate not the delegator, an active decider of this tenant;
       types the tenant has (`known_types`, the engine's policies).
    3. Lock the delegator's row, refuse an overlap with their other periods (409), write, audit, event.
       It is in force from starts_at whatever the sweep does; the sweep only announces its start and end.
    """
    tenant = actor.tenant
    if actor.user is None:
        raise PermissionDenied("only a person can set an out-of-office", slug="person-required")
    if delegator.pk != actor.user.pk and not actor.can(Capability.DELEGATION_MANAGE_OTHERS):
        raise PermissionDenied("setting someone else's out-of-office needs delegation.manage_others",
                               slug="missing-capability")
    errors: dict[str, list[str]] = {}
    if not _member(tenant, delegator):
        errors["delegator"] = ["Not an active member of this tenant."]
    now = timezone.now()
    try:
        starts_at, ends_at = (on_the_minute(wanted.starts_at, tenant, delegator),
                              on_the_minute(wanted.ends_at, tenant, delegator))
    except (OverflowError, ValueError):  # e.g. 9999-12-31T23:59 with a negative offset: no such instant
        raise ValidationFailed("the period is out of range", errors={"ends_at": ["Out of range."]}) from None
    this_minute = on_the_minute(now, tenant)
    starts_at = max(starts_at, this_minute)  # a start in the past means "from now"
    if ends_at <= starts_at:
        errors["ends_at"] = ["Must be after starts_at (and in the future)."]
    elif ends_at - starts_at > timedelta(days=MAX_DAYS):
        errors["ends_at"] = [f"A delegation lasts at most {MAX_DAYS} days."]
    delegate = wanted.delegate
    if delegate is not None:
        if delegate.pk == delegator.pk:
            errors["delegate"] = ["You cannot stand in for yourself."]
        elif not _member(tenant, delegate):
            errors["delegate"] = ["Not a person of this tenant."]
        elif Capability.ESCALATION_DECIDE not in user_authority(user=delegate, tenant=tenant)[1]:
            errors["delegate"] = ["This person does not decide escalations."]
    types = [str(t).strip().upper() for t in wanted.escalation_types]
    unknown = sorted({t for t in types if t not in set(known_types)})
    if len(types) > MAX_TYPES:
        errors["escalation_types"] = [f"At most {MAX_TYPES} types."]
    elif unknown:
        errors["escalation_types"] = [f"Not a type of this tenant: {', '.join(unknown)}."]
    if errors:
        raise ValidationFailed("the delegation is invalid: " + ", ".join(sorted(errors)), errors=errors)

    with transaction.atomic():
        # One delegator's periods are checked and written under the delegator's row lock: two requests at once
        # cannot both pass the overlap check.
        User.objects.select_for_update().filter(pk=delegator.pk).first()
        clash = Delegation.objects.filter(tenant=tenant, delegator=delegator, revoked_at__isnull=True,
                                          starts_at__lt=ends_at, ends_at__gt=starts_at).first()
        if clash is not None:
            raise Conflict(f"{delegator.username} is already away from {clash.starts_at.isoformat()} to "
                           f"{clash.ends_at.isoformat()}; periods may not overlap", slug="delegation-overlap",
                           extra={"conflicting_delegation": str(clash.pk)})
        delegation = Delegation.objects.create(
            tenant=tenant, delegator=delegator, delegate=delegate, starts_at=starts_at, ends_at=ends_at,
            escalation_types=sorted(set(types)), created_by=actor.user)
        _record(delegation, actor=actor, action=AuditAction.DELEGATION_CREATED, event=events.DELEGATION_CREATED,
                before=None, now=now)
    return delegation


def delegation_for_change(*, actor: Actor, delegation_id: Any) -> Delegation:
    """The delegation `actor` may end: their own, or (delegation.manage_others) any of the tenant; else 404."""
    import uuid

    try:
        pk = uuid.UUID(str(delegation_id))
    except ValueError:
        raise NotFound("no such delegation", slug="not-found") from None
    queryset = Delegation.objects.filter(pk=pk, tenant=actor.tenant).select_related("delegator", "delegate")
    # Operators: the capability, or the admin's staff check (the admin is where operators end delegations).
    if not (actor.can(Capability.DELEGATION_MANAGE_OTHERS) or (actor.user is not None and actor.user.is_staff)):
        queryset = queryset.filter(delegator=actor.user) if actor.user is not None else queryset.none()
    found = queryset.first()
    if found is None:
        raise NotFound("no such delegation", slug="not-found")
    return found


def delegation_revoke(*, actor: Actor, delegation_id: Any) -> Delegation:
    """End a delegation early (the delegator's DELETE, an operator's "end"): revoked, audited, announced."""
    with transaction.atomic():
        delegation = delegation_for_change(actor=actor, delegation_id=delegation_id)
        delegation = (Delegation.objects.select_for_update(of=("self",)).select_related("delegator", "delegate")
                      .get(pk=delegation.pk))
        now = timezone.now()
        if delegation.status_at(now) in (Delegation.Status.REVOKED, Delegation.Status.ENDED):
            raise Conflict(f"this delegation is already {delegation.status_at(now)}", slug="invalid-state")
        before = _audit_state(delegation)
        delegation.revoked_at, delegation.revoked_by = now, actor.user
        delegation.ended_at = now  # announced here: the sweep's end pass leaves it alone
        delegation.save(update_fields=["revoked_at", "revoked_by", "ended_at"])
        _record(delegation, actor=actor, action=AuditAction.DELEGATION_REVOKED, event=events.DELEGATION_REVOKED,
                before=before, now=now)
    return delegation


@dataclass
class DelegationSweepResult:
    started: int = 0
    ended: int = 0

    def summary(self) -> str:
        return f"{self.started} delegations started, {self.ended} ended"


SWEEP_JOB = "delegation_sweep"
SWEEP_CHUNK = 500


def delegations_sweep(*, now: datetime | None = None,
                      on_start: Callable[[Delegation, datetime], None] | None = None) -> DelegationSweepResult:
    """Announce the starts and ends that have come (each once: started_at / ended_at), safe to run twice at once.

    Rows are claimed with SKIP LOCKED (PostgreSQL), so two sweeps never announce one row twice. `on_start`
    (the engine's: escalations.standins) runs for each start in the same transaction.
    """
    now = now or timezone.now()
    result = DelegationSweepResult()
    with transaction.atomic():
        due = list(Delegation.objects.select_for_update(skip_locked=True, of=("self",))
                   .select_related("tenant", "delegator", "delegate")
                   .filter(revoked_at__isnull=True, started_at__isnull=True, starts_at__lte=now)
                   .order_by("starts_at", "pk")[:SWEEP_CHUNK])
        for delegation in due:
            delegation.started_at = now
            delegation.save(update_fields=["started_at"])
            event_emit(events.DELEGATION_STARTED(tenant_id=delegation.tenant_id, aggregate_id=delegation.pk,
                                                 data=_event_data(delegation, now)))
            if on_start is not None:
                on_start(delegation, now)
            result.started += 1
    with transaction.atomic():
        due = list(Delegation.objects.select_for_update(skip_locked=True, of=("self",))
                   .select_related("tenant", "delegator", "delegate")
                   .filter(revoked_at__isnull=True, ended_at__isnull=True, ends_at__lte=now)
                   .order_by("ends_at", "pk")[:SWEEP_CHUNK])
        for delegation in due:
            before = _audit_state(delegation)
            delegation.ended_at = now
            delegation.save(update_fields=["ended_at"])
            _record(delegation, actor=Actor.for_system(delegation.tenant, SWEEP_JOB), action=AuditAction.DELEGATION_ENDED,
                    event=events.DELEGATION_ENDED, before=before, now=now)
            result.ended += 1
    return result
