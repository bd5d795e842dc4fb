"""The decision engine's rules: who may decide, four eyes, one approval per person, quorum, stages.

Callers hold the transaction; these functions lock the request row they change.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import BooleanField, Case, F, Prefetch, Q, Value, When, prefetch_related_objects
from django.utils import timezone

from accounts.models import Tenant, User
from privacy.vault import same_person_email
from trustguard.bulk import update_rows
from trustguard.errors import Conflict, PermissionDenied, ValidationFailed

from .models import ApprovalRequest, ApprovalStage, Decision
from .selectors import stage_named

MAX_CONDITIONS = 20
MAX_CONDITION_LENGTH = 500


@dataclass(frozen=True)
class StageSpec:
    roles: Sequence[str]
    approvals_required: int
    people: Sequence[str] = ()  # usernames named on the route (issue 22): they may decide whatever their roles


@dataclass
class DecisionOutcome:
    decision: Decision
    stage_completed: bool = False
    request_status: str = ApprovalRequest.Status.OPEN
    opened_stage: ApprovalStage | None = None
    skipped_stages: list[int] = field(default_factory=list)


def _open_next_stage(request: ApprovalRequest, after_index: int, now: datetime) -> ApprovalStage | None:
    """Open the first stage after `after_index` that needs approvals; stages needing none complete at once."""
    # approval_lock has the stages (locked, in index order) in hand: no second read of them.
    stages = (list(request.stages.all()) if "stages" in _prefetched(request)
              else request.stages.filter(index__gt=after_index).order_by("index"))
    for stage in (s for s in stages if s.index > after_index):
        if stage.approvals_required == 0:
            stage.status, stage.opened_at, stage.completed_at = ApprovalStage.Status.COMPLETE, now, now
            stage.save(update_fields=["status", "opened_at", "completed_at"])
            continue
        stage.status, stage.opened_at = ApprovalStage.Status.OPEN, now
        stage.save(update_fields=["status", "opened_at"])
        request.current_stage = stage.index
        return stage
    return None


def _build_stages(request: ApprovalRequest, stages: Sequence[StageSpec], now: datetime) -> list[ApprovalStage]:
    """Write a request's stages: leading stages that need no approval are complete, the first that needs one
    is open, the rest wait. Sets request.current_stage; the caller saves the request (and its status)."""
    first_open = next((i for i, spec in enumerate(stages) if spec.approvals_required > 0), None)
    request.current_stage = first_open or 0
    built = []
    for i, spec in enumerate(stages):
        stage = ApprovalStage(request=request, index=i, roles=list(spec.roles),
                              assigned_role=spec.roles[0] if spec.roles else "",
                              approvals_required=spec.approvals_required)
        if first_open is None or i < first_open:
            stage.status, stage.opened_at, stage.completed_at = ApprovalStage.Status.COMPLETE, now, now
        elif i == first_open:
            stage.status, stage.opened_at = ApprovalStage.Status.OPEN, now
        built.append(stage)
    ApprovalStage.objects.bulk_create(built)
    named = _name_people(request, built, stages) if any(spec.people for spec in stages) else {}
    for stage in built:  # most routes name nobody: no query for them, now or when the 201 body lists each stage's people
        _keep_in_hand(stage, people=named.get(stage.index, []))
    return built


def _name_people(request: ApprovalRequest, built: Sequence[ApprovalStage],
                 stages: Sequence[StageSpec]) -> dict[int, list[User]]:
    """Link each stage to the people it names, as members of the request's tenant (in any state: one who is inactive
    or left is kept, so the stage can say who it named, and stage_named leaves them out); return them by stage."""
    names = {name for spec in stages for name in spec.people}
    users = {user.username: user for user in User.objects.filter(
        username__in=sorted(names), memberships__tenant_id=request.tenant_id).distinct().only("id", "username")}
    named = {stage.index: [users[name] for name in dict.fromkeys(spec.people) if name in users]
             for stage, spec in zip(built, stages, strict=True)}
    through = ApprovalStage.people.through
    through.objects.bulk_create([through(approvalstage_id=stage.pk, user_id=user.pk)
                                 for stage in built for user in named[stage.index]])
    return named


def approval_request_create(*, tenant: Tenant, stages: Sequence[StageSpec], requester_user: User | None,
                            requester_email: str, allow_self_approval: bool) -> tuple[ApprovalRequest, list[ApprovalStage]]:
    """Create a request with its stages and open the first stage that needs approvals; return both.

    A request whose stages all need zero approvals is approved at once.
    """
    if not stages:
        raise ValidationFailed("an approval request needs at least one stage", errors={"route": ["Empty route."]})
    now = timezone.now()
    # Decided before writing (two INSERTs, no follow-up UPDATEs).
    needs_approval = any(spec.approvals_required > 0 for spec in stages)
    request = ApprovalRequest.objects.create(
        tenant=tenant, requester_user=requester_user, requester_email=requester_email or "",
        allow_self_approval=allow_self_approval,
        current_stage=next((i for i, spec in enumerate(stages) if spec.approvals_required > 0), 0),
        status=ApprovalRequest.Status.OPEN if needs_approval else ApprovalRequest.Status.APPROVED,
        decided_at=None if needs_approval else now)
    built = _build_stages(request, stages, now)
    _keep_in_hand(request, stages=built, decisions=[])
    return request, built


def _keep_in_hand(instance: ApprovalRequest | ApprovalStage, **relations: list[Any]) -> None:
    """Rows just written, kept as `instance`'s relations (Django's prefetch cache): request.stages.all(),
    request.decisions.all() and stage.people.all() then read no row (the 201 body of a create is built from the rows
    in hand)."""
    cache = instance.__dict__.setdefault("_prefetched_objects_cache", {})
    for name, rows in relations.items():
        queryset = getattr(instance, name).all()
        queryset._result_cache, queryset._prefetch_done = list(rows), True
        cache[name] = queryset


def approval_restart(*, request: ApprovalRequest, stages: Sequence[StageSpec]) -> tuple[list[ApprovalStage], list[Decision]]:
    """Start an open request again from its first stage with `stages` (an amendment): return the new stages and the
    approvals that no longer count (dismissed).

    `request` comes from approval_lock in the caller's transaction. The round goes up: every decision of earlier
    rounds stays (evidence) but is dismissed (is_dismissed), and the people who gave them may approve again.
    A route that now needs no approval approves the request at once.
    """
    if request.status != ApprovalRequest.Status.OPEN:
        raise Conflict(f"the request is already {request.status}", slug="already-decided")
    if not stages:
        raise ValidationFailed("an approval request needs at least one stage", errors={"route": ["Empty route."]})
    now = timezone.now()
    dismissed = [d for d in request.decisions.all() if d.decision == Decision.Kind.APPROVE and d.round == request.round]
    request.round += 1
    ApprovalStage.objects.filter(request=request).delete()
    built = _build_stages(request, stages, now)
    if not any(spec.approvals_required > 0 for spec in stages):
        request.status, request.decided_at = ApprovalRequest.Status.APPROVED, now
    request.save(update_fields=["round", "current_stage", "status", "decided_at"])
    _prefetched(request).pop("stages", None)  # the old stages are gone: read the new ones
    return built, dismissed


def is_dismissed(decision: Decision, request: ApprovalRequest) -> bool:
    """THE rule of dismissed approvals: an approval given in an earlier round (before an amendment restarted the
    request) is kept as evidence but counts for nothing: not toward a quorum, not as "already approved"."""
    return is_dismissed_in(decision, request.round)


def dismissed_sql() -> Case:
    """is_dismissed as a database expression over Decision rows (exports annotate with it)."""
    return Case(When(decision=Decision.Kind.APPROVE, round__lt=F("request__round"), then=Value(True)),
                default=Value(False), output_field=BooleanField())


def is_dismissed_in(decision: Decision, current_round: int) -> bool:
    """is_dismissed, given the request's current round (for callers that hold only the number)."""
    return decision.decision == Decision.Kind.APPROVE and decision.round < current_round


def is_requester(request: ApprovalRequest, user: User) -> bool:
    """The four-eyes comparison: the same user, or the same email (case-insensitively)."""
    if request.requester_user_id is not None and request.requester_user_id == user.pk:
        return True
    # A third party's email is kept as a blind index (privacy.vault): compared the same way, never decrypted.
    return same_person_email(request.requester_email, user.email)


def _prefetched(request: ApprovalRequest) -> dict[str, Any]:
    """The relations of `request` already in hand (Django's prefetch cache), by name."""
    return getattr(request, "_prefetched_objects_cache", {})


def approval_already_counted(request: ApprovalRequest, *, people: Collection[int]) -> bool:
    """The quorum's one-vote-per-person rule: does an approval already count for any of `people`?

    `people` is the decider and whoever they are one voter with: the person they decide on behalf of, and anyone
    paired with them by a delegation in force (escalations.standins.decider_capacity). An approval counts for
    both its decider and the person it was given on behalf of, so a delegator and their delegate together make
    one vote, whichever of them approves first. A dismissed approval (an earlier round: is_dismissed) counts for
    nobody.
    """
    wanted = set(people)
    if "decisions" in _prefetched(request):  # every decision so far, read under the request's lock
        return any(d.decision == Decision.Kind.APPROVE and not is_dismissed(d, request)
                   and (d.decided_by_id in wanted or d.on_behalf_of_id in wanted)
                   for d in request.decisions.all())
    return request.decisions.filter(Q(decided_by_id__in=wanted) | Q(on_behalf_of_id__in=wanted),
                                    decision=Decision.Kind.APPROVE, round=request.round).exists()


def current_stage(request: ApprovalRequest) -> ApprovalStage:
    return request.stages.get(index=request.current_stage)


def _clean_conditions(conditions: Sequence[str]) -> list[str]:
    cleaned = [str(c).strip() for c in conditions]
    if any(not c for c in cleaned):
        raise ValidationFailed("conditions must not be blank", errors={"conditions": ["Blank condition."]})
    if len(cleaned) > MAX_CONDITIONS or any(len(c) > MAX_CONDITION_LENGTH for c in cleaned):
        raise ValidationFailed("too many or too long conditions",
                               errors={"conditions": [f"At most {MAX_CONDITIONS} of {MAX_CONDITION_LENGTH} characters."]})
    return cleaned


def deciding_role_of(stage: ApprovalStage, roles: frozenset[str], *, user: User) -> str | None:
    """In what a person decides at `stage`: the first of its roles they act in, "" when they decide as a person the
    stage names (`user`: the decider, or the named person a delegate stands in for), None when they may not."""
    role = next((r for r in stage.eligible_roles if r in roles), None)
    if role is not None:
        return role
    return "" if user.pk in stage_named(stage) else None


def approval_check_decider(*, request: ApprovalRequest, stage: ApprovalStage, user: User, roles: frozenset[str],
                           decision: str, on_behalf_of: User | None = None,
                           partners: Collection[int] = ()) -> bool:
    """Raise if `user` may not record `decision` now; return whether it is a (permitted) self-approval.

    `roles` are the roles the decider acts in: their own, or (on_behalf_of) the delegator's own; a person the stage
    names (or their delegate, on_behalf_of) may decide without one (deciding_role_of). A delegate
    never decides what the delegate or the delegator requested, whatever the tenant's mode. `partners` are the
    people the decider counts as one voter with (approval_already_counted).
    Checked before the second factor, so a refused decision never consumes a code.
    """
    if request.status != ApprovalRequest.Status.OPEN:
        raise Conflict(f"the request is already {request.status}; decisions are final", slug="already-decided")
    if deciding_role_of(stage, roles, user=on_behalf_of or user) is None:
        raise PermissionDenied(f"only a member of {stage.assigned_role or 'the named people'} may decide at this "
                               "stage", slug="not-assigned")
    if on_behalf_of is not None and (is_requester(request, user) or is_requester(request, on_behalf_of)):
        raise PermissionDenied("a delegate may not decide a request that they or the person they stand in for "
                               "made (four-eyes rule)", slug="four-eyes")
    self_approval = decision == Decision.Kind.APPROVE and is_requester(request, user)
    if self_approval and not request.allow_self_approval:
        raise PermissionDenied("the requester may not approve their own request (four-eyes rule)", slug="four-eyes")
    people = {user.pk, *partners, *([on_behalf_of.pk] if on_behalf_of is not None else [])}
    if decision == Decision.Kind.APPROVE and approval_already_counted(request, people=people):
        raise Conflict("an approval by you, or by the person you stand in for (or who stands in for you), already "
                       "counts; a second approval must come from someone else", slug="duplicate-approval")
    return self_approval


def validate_decision_input(*, decision: str, justification: str, conditions: Sequence[str],
                            defer_until: datetime | None) -> tuple[str, list[str]]:
    """Check a decision's own fields; return the cleaned justification and conditions."""
    if decision not in Decision.Kind.values:
        raise ValidationFailed(f"unknown decision {decision!r}", errors={"decision": ["Use approve, reject or defer."]})
    justification = (justification or "").strip()
    if not justification:
        raise ValidationFailed("a justification is required", errors={"justification": ["This field may not be blank."]})
    cleaned_conditions = _clean_conditions(conditions)
    if cleaned_conditions and decision != Decision.Kind.APPROVE:
        raise ValidationFailed("conditions go with an approval", errors={"conditions": ["Only an approval takes conditions."]})
    now = timezone.now()
    if decision == Decision.Kind.DEFER:
        if defer_until is None:
            raise ValidationFailed("defer_until is required to defer", errors={"defer_until": ["This field is required."]})
        if defer_until <= now:
            raise ValidationFailed("defer_until must be in the future", errors={"defer_until": ["Must be in the future."]})
    elif defer_until is not None:
        raise ValidationFailed("defer_until goes with a deferral", errors={"defer_until": ["Only a deferral takes a date."]})

    return justification, cleaned_conditions


def approval_lock(request_id: int | ApprovalRequest) -> tuple[ApprovalRequest, ApprovalStage]:
    """Lock a request, then its stages in index order (always in this order: no deadlock between deciders);
    return it and its current stage. Given the request itself, the caller has locked its row already (in the
    statement that locked the escalation: escalations.services.lock_escalation with lock_approval).

    The stages and the decisions so far stay on the request (request.stages.all() and
    request.decisions.all() read nothing more): the rules, the engine (which keeps them current) and
    the caller's response use them. Decisions need no lock: they are only written under the request's.
    """
    if isinstance(request_id, ApprovalRequest):
        locked = request_id
    else:
        locked = ApprovalRequest.objects.select_for_update().get(pk=request_id)
    prefetch_related_objects(
        [locked], Prefetch("stages", queryset=ApprovalStage.objects.select_for_update().order_by("index")),
        Prefetch("decisions", queryset=Decision.objects.select_related("decided_by", "on_behalf_of")
                                .order_by("decided_at", "id")))
    stage = next((s for s in locked.stages.all() if s.index == locked.current_stage), None)
    if stage is None:
        raise ApprovalStage.DoesNotExist(f"request {locked.pk} has no stage {locked.current_stage}")
    return locked, stage


def approval_decide(*, request: ApprovalRequest, stage: ApprovalStage, user: User, roles: frozenset[str],
                    decision: str, justification: str, conditions: Sequence[str] = (),
                    defer_until: datetime | None = None, on_behalf_of: User | None = None,
                    partners: Collection[int] = ()) -> DecisionOutcome:
    """Record one decision and apply its consequence.

    1. `request` and `stage` come from approval_lock in the caller's transaction; the rules are
       checked on them here (approval_check_decider), whatever the caller checked before.
    2. Write the immutable decision (the unique constraint refuses a second approval by one person).
    3. Approve: count it; a met quorum completes the stage and opens the next, or approves the request.
       Reject: the stage and the request are rejected. Defer: recorded; the request stays open.
    """
    justification, cleaned_conditions = validate_decision_input(
        decision=decision, justification=justification, conditions=conditions, defer_until=defer_until)
    now = timezone.now()
    self_approved = approval_check_decider(request=request, stage=stage, user=user, roles=roles, decision=decision,
                                           on_behalf_of=on_behalf_of, partners=partners)
    deciding_role = deciding_role_of(stage, roles, user=on_behalf_of or user) or ""
    try:
        with transaction.atomic():  # a savepoint, so a lost race leaves the outer transaction usable
            record = Decision.objects.create(
                request=request, stage=stage.index, decision=decision, justification=justification,
                conditions=cleaned_conditions, decided_by=user, role=deciding_role, self_approved=self_approved,
                on_behalf_of=on_behalf_of,
                defer_until=defer_until if decision == Decision.Kind.DEFER else None, round=request.round,
            )
    except IntegrityError as exc:
        raise Conflict("you have already approved this request", slug="duplicate-approval") from exc
    if "decisions" in _prefetched(request):  # keep request.decisions.all() what the database now holds
        decisions = request.decisions.all()
        decisions._result_cache = sorted([*decisions, record], key=lambda d: (d.decided_at, d.id))

    outcome = DecisionOutcome(decision=record)
    if decision == Decision.Kind.APPROVE:
        stage.approvals_received += 1
        if stage.approvals_received >= stage.approvals_required:
            stage.status, stage.completed_at = ApprovalStage.Status.COMPLETE, now
            outcome.stage_completed = True
        stage.save(update_fields=["approvals_received", "status", "completed_at"])
        if outcome.stage_completed:
            outcome.opened_stage = _open_next_stage(request, stage.index, now)
            if outcome.opened_stage is None:
                request.status, request.decided_at = ApprovalRequest.Status.APPROVED, now
    elif decision == Decision.Kind.REJECT:
        stage.status, stage.completed_at = ApprovalStage.Status.REJECTED, now
        stage.save(update_fields=["status", "completed_at"])
        request.status, request.decided_at = ApprovalRequest.Status.REJECTED, now
    request.save(update_fields=["status", "decided_at", "current_stage"])
    outcome.request_status = request.status
    return outcome


def approval_close(*, request: ApprovalRequest, status: str) -> ApprovalRequest:
    """End an open request without a deciding vote (cancelled, expired-as-rejected)."""
    request = ApprovalRequest.objects.select_for_update().get(pk=request.pk)
    if request.status == ApprovalRequest.Status.OPEN:
        request.status, request.decided_at = status, timezone.now()
        request.save(update_fields=["status", "decided_at"])
    return request


@dataclass(frozen=True, slots=True)
class StageState:
    """A stage as approval_stages_reassign leaves it: what the escalation copies from its current stage."""

    index: int
    assigned_role: str
    approvals_required: int
    approvals_received: int


def approval_stages_reassign(*, roles_by_request: Mapping[int, str]) -> dict[int, StageState]:
    """Ask other roles at the current stages (re-escalation sweeps): {request id: role} -> {request id: stage}.

    Approvals already given still count.

    Locks the current stages in pk order with one query (read as tuples, no model instances) and writes
    them with one more.
    """
    if not roles_by_request:
        return {}
    stages = list(ApprovalStage.objects.select_for_update(of=("self",))
                  .filter(request_id__in=list(roles_by_request), index=F("request__current_stage")).order_by("pk")
                  .values_list("pk", "request_id", "index", "approvals_required", "approvals_received"))
    update_rows(ApprovalStage, ["assigned_role"], [(pk, roles_by_request[request]) for pk, request, *_ in stages])
    return {request: StageState(index, roles_by_request[request], required, received)
            for _, request, index, required, received in stages}


def approval_close_many(*, status_by_request: Mapping[int, str]) -> None:
    """approval_close for a batch (sweeps): end the open requests among them, locked in pk order."""
    if not status_by_request:
        return
    now = timezone.now()
    requests = list(ApprovalRequest.objects.select_for_update()
                    .filter(pk__in=list(status_by_request), status=ApprovalRequest.Status.OPEN).order_by("pk")
                    .values_list("pk", flat=True))
    update_rows(ApprovalRequest, ["status", "decided_at"], [(pk, status_by_request[pk], now) for pk in requests])
