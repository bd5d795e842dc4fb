"""Reads about approval stages: the people a stage names (issue 22), for the engine's rule and the queues."""

from __future__ import annotations

from collections.abc import Collection

from django.db.models import QuerySet

from accounts.models import User

from .models import ApprovalStage

_Named = ApprovalStage.people.through


def stage_named(stage: ApprovalStage) -> frozenset[int]:
    """THE answer to "whom does this stage name?": the ids of its named people who are active members of the tenant
    now (one who left or was deactivated since the policy named them decides nothing)."""
    return frozenset(named_people(request_id=stage.request_id, index=stage.index,
                                  tenant_id=stage.request.tenant_id).values_list("pk", flat=True))


def named_people(*, request_id: int, index: int, tenant_id: int) -> QuerySet[User]:
    """The active members of the tenant that stage `index` of request `request_id` names, by id."""
    return (User.objects.filter(pk__in=_Named.objects.filter(approvalstage__request_id=request_id,
                                                               approvalstage__index=index).values("user_id"),
                                is_active=True, memberships__tenant_id=tenant_id, memberships__is_active=True)
            .distinct().order_by("pk"))


def open_requests_naming(*, user_ids: Collection[int]) -> dict[int, list[int]]:
    """{user id: ids of the open requests whose open stage names them}: a person's queue of named cases (one query
    on the join table's user index; most people are named nowhere)."""
    out: dict[int, list[int]] = {}
    if not user_ids:
        return out
    rows = _Named.objects.filter(user_id__in=sorted(user_ids), approvalstage__status=ApprovalStage.Status.OPEN,
                                 approvalstage__request__status="open")
    for user_id, request_id in rows.values_list("user_id", "approvalstage__request_id"):
        out.setdefault(user_id, []).append(request_id)
    return out
