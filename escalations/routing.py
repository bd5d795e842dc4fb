"""The route of one request under a policy: which stages apply (conditions), and how many approvals each needs.

One function, `route_for_request`, answers it for creation, the dry run (/escalations/check), the policy
editor's preview and amendments; the answer is pinned into the escalation's policy snapshot (`route_plan`),
next to the policy version, so a later edit of the policy never changes a case in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from approvals.services import StageSpec

from .conditions import Facts, describe, evaluate
from .models import stage_approvals


@dataclass(frozen=True)
class PlannedStage:
    index: int  # in the policy's route
    roles: list[str]
    people: list[str]  # usernames named on the stage (issue 22), beside or instead of roles
    approvals_required: int  # at this request's risk (models.stage_approvals)
    by_risk: bool  # the number comes from approvals_by_risk
    when: dict[str, Any] | None
    applies: bool

    def as_dict(self, locale: str | None = None) -> dict[str, Any]:
        out = {"stage": self.index, "roles": list(self.roles), "approvals_required": self.approvals_required,
               "by_risk": self.by_risk, "when": self.when, "condition": describe(self.when, locale) if self.when else None,
               "applies": self.applies}
        if self.people:  # only when named: the pinned plans of routes that name nobody keep their shape
            out["people"] = list(self.people)
        return out


@dataclass(frozen=True)
class RouteDecision:
    stages: list[PlannedStage]  # every stage of the policy, applying or not

    @property
    def applied(self) -> list[PlannedStage]:
        return [s for s in self.stages if s.applies]

    def specs(self) -> list[StageSpec]:
        """The approval stages to open, in order."""
        return [StageSpec(roles=s.roles, approvals_required=s.approvals_required, people=s.people)
                for s in self.applied]

    def pinned(self, locale: str | None = None) -> list[dict[str, Any]]:
        """What the escalation keeps (snapshot["route_plan"]): each stage, whether it applied, and why."""
        return [s.as_dict(locale) for s in self.stages]


def route_for_request(*, snapshot: dict[str, Any], risk_level: str, facts: Facts | None) -> RouteDecision:
    """Evaluate a policy snapshot's route for one request: every stage's conditions once, approvals at its risk.

    Without facts (a caller that has none) every conditional stage is left out: a condition that cannot be
    checked does not hold.
    """
    by_risk = snapshot.get("approvals_by_risk") or {}
    stages = []
    for i, stage in enumerate(snapshot["route"]):
        when = stage.get("when")
        applies = True if not when else (facts is not None and evaluate(when, facts))
        stages.append(PlannedStage(index=i, roles=list(stage["roles"]), people=list(stage.get("people") or ()),
                                   approvals_required=stage_approvals(stage, by_risk, risk_level),
                                   by_risk=stage.get("approvals_required") is None, when=when, applies=applies))
    return RouteDecision(stages=stages)
