"""The re-escalation ladder: who is asked next when the assigned role does not acknowledge in time.

One function (next_ladder_step) answers it for both the SLA sweep (which acts on it) and the
"what is still needed" read (which tells people about it), so the two never disagree.

Levels count re-escalations: a pending escalation is asked of its stage's role at level 0; each
re-escalation is level + 1, never past the policy's max_escalation_level (<= 3). A ladder role with
no active member in the tenant is passed over (the caller audits the skip) and does not use up a
level: the level says how many times the case moved up, not where on the ladder it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from accounts.roles import Role

DEFAULT_LADDER: tuple[str, ...] = (Role.COMPLIANCE_OFFICER, Role.SENIOR_MANAGER, Role.GOVERNING_BODY)
MAX_LEVEL = 3  # the database's CheckConstraint escalation_level_le_3
DEFAULT_MAX_LEVEL = 2


class TopReason:
    """Why an escalation has no next ladder role (it is at its top: alert only, wait for a decision)."""

    MAX_LEVEL = "max_escalation_level"  # it already moved up as often as the policy allows
    OFF_LADDER = "not_on_ladder"  # the assigned role (e.g. ceo) is not on the ladder at all
    LADDER_END = "top_of_ladder"  # no role above it on the ladder
    NO_MEMBERS = "no_active_member_above"  # roles above it exist, but none has an active member


@dataclass(frozen=True)
class LadderStep:
    role: str | None  # the role asked next; None when the escalation is at its top
    level: int  # the level it would move to (the current level when at the top)
    skipped: tuple[str, ...] = ()  # ladder roles passed over for having no active member
    top_reason: str = ""  # why there is no next role (a TopReason value), when there is none

    @property
    def at_top(self) -> bool:
        return self.role is None


def ladder_of(snapshot: dict[str, Any]) -> Sequence[str]:
    return snapshot.get("ladder") or DEFAULT_LADDER


def max_level_of(snapshot: dict[str, Any]) -> int:
    value = snapshot.get("max_escalation_level")
    return min(MAX_LEVEL, DEFAULT_MAX_LEVEL if value is None else int(value))


def next_ladder_step(*, snapshot: dict[str, Any], assigned_role: str, level: int,
                     has_active_member: Callable[[str], bool]) -> LadderStep:
    """The next role up the ladder from `assigned_role` at `level`, skipping roles nobody holds."""
    if level >= max_level_of(snapshot):
        return LadderStep(role=None, level=level, top_reason=TopReason.MAX_LEVEL)
    ladder = list(ladder_of(snapshot))
    if assigned_role not in ladder:
        return LadderStep(role=None, level=level, top_reason=TopReason.OFF_LADDER)
    skipped: list[str] = []
    for role in ladder[ladder.index(assigned_role) + 1:]:
        if role == assigned_role:
            continue
        if has_active_member(role):
            return LadderStep(role=role, level=level + 1, skipped=tuple(skipped))
        skipped.append(role)
    return LadderStep(role=None, level=level, skipped=tuple(skipped),
                      top_reason=TopReason.NO_MEMBERS if skipped else TopReason.LADDER_END)
