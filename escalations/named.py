"""The people a case's current stage names (issue 22), read the cheap way first: the usernames pinned in the
escalation's route plan say whether there is anyone to look up at all, so routes that name nobody never pay."""

from __future__ import annotations

from accounts.models import User
from approvals.selectors import named_people

from .models import Escalation


def stage_names(escalation: Escalation) -> list[str]:
    """The usernames the current stage names, as pinned at creation (snapshot route_plan; no query): [] for the
    routes that name nobody, so that they never pay for the named people's reads."""
    applied = [s for s in escalation.policy_snapshot.get("route_plan") or () if s.get("applies")]
    if escalation.current_stage >= len(applied):
        return []
    return list(applied[escalation.current_stage].get("people") or ())


def named_now(escalation: Escalation) -> list[User]:
    """The people the current stage names who are active members of the tenant now (approvals.selectors)."""
    if not stage_names(escalation):
        return []
    return list(named_people(request_id=escalation.approval_id, index=escalation.current_stage,
                             tenant_id=escalation.tenant_id))
