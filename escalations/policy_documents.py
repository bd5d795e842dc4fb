"""The policy as a document: what GET /policies/{type} returns, and how a PUT of it (changed or not) reads.

CONTRACT.md section 5 "Round trips": the document GET returned is accepted back. Fields the server owns
(`type`, `version`, `updated_at`) are ignored when they equal the current value; `version` (or `If-Match`
with the GET's `ETag`) is the optimistic-concurrency token, so a stale one is 409 (policies.policy_upsert
checks it on the locked row). `effective_approvals` is computed from the route and approvals_by_risk, so
it is always ignored. `route` and `stages` say the same thing twice: send either; when both are sent the one
that was changed wins, and two different changes are a 400 naming `route`.

A stage may name people (`people`: usernames of the tenant's members, issue 22) beside or instead of roles; only
`stages` carries them (`route` is roles per stage), and editing `route` alone keeps each stage's named people
while the number of stages stays the same.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from trustguard.errors import Conflict, ValidationFailed

from .models import Policy
from .serializers import iso

SERVER_OWNED = ("type", "version", "updated_at", "effective_approvals")
_ETAG = re.compile(r'^\s*(?:W/)?"v(\d{1,9})"\s*$')


def policy_etag(policy: Policy) -> str:
    return f'"v{policy.version}"'


def _stages_of(policy: Policy | None) -> list[dict[str, Any]] | None:
    return [_stage_out(s) for s in policy.route] if policy is not None else None


def _stage_out(stage: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"roles": list(stage["roles"]), "approvals_required": stage.get("approvals_required")}
    if stage.get("people"):
        out["people"] = list(stage["people"])
    if stage.get("when"):
        out["when"] = stage["when"]
    return out


def policy_document(policy: Policy) -> dict[str, Any]:
    """GET /policies/{type}: the editable fields, the route twice (roles only, and stages), server-owned fields."""
    return {
        "type": policy.type, "name": policy.name,
        "route": [list(stage["roles"]) for stage in policy.route],
        "stages": _stages_of(policy),
        "approvals_by_risk": policy.approvals_by_risk or {}, "default_risk_level": policy.default_risk_level,
        "effective_approvals": policy.effective_approvals(),
        "ack_sla_seconds": policy.ack_sla_seconds, "expiry_seconds": policy.expiry_seconds,
        "ladder": policy.ladder, "max_escalation_level": policy.max_escalation_level,
        "notify_channels": policy.notify_channels, "single_employee_mode": policy.single_employee_mode,
        "expiry_outcome": policy.expiry_outcome, "high_risk_expiry_outcome": policy.high_risk_expiry_outcome,
        "max_deferral_seconds": policy.max_deferral_seconds,
        "deferral_may_extend_expiry": policy.deferral_may_extend_expiry,
        "approval_ttl_seconds": policy.approval_ttl_seconds, "max_window_seconds": policy.max_window_seconds,
        "condition_due_seconds": policy.condition_due_seconds,
        "amendments_take_current_version": policy.amendments_take_current_version,
        "is_active": policy.is_active, "version": policy.version, "updated_at": iso(policy.updated_at),
    }


def _if_match_version(if_match: str | None) -> int | None:
    if not if_match or if_match.strip() == "*":
        return None
    found = _ETAG.match(if_match)
    if found is None:
        raise ValidationFailed("If-Match takes the ETag that GET sent, e.g. \"v3\"",
                               errors={"If-Match": ['The ETag of GET /policies/{type}, e.g. "v3".']})
    return int(found.group(1))


def _keep_people(route: Any, policy: Policy | None) -> Any:
    """An edit of the roles-per-stage view keeps the people each stage names (that view cannot show them), when
    the stages are still the same in number; otherwise the route is taken as sent."""
    if policy is None or not isinstance(route, list) or len(route) != len(policy.route):
        return route
    if not any(stage.get("people") for stage in policy.route):
        return route
    return [{"roles": roles if isinstance(roles, list) else [roles], "people": list(stage["people"])}
            if stage.get("people") and isinstance(roles, list | str) else roles
            for roles, stage in zip(route, policy.route, strict=True)]


def policy_fields_from_document(document: dict[str, Any], *, policy_type: str, policy: Policy | None,
                                if_match: str | None) -> tuple[dict[str, Any], int | None]:
    """The editable fields of a PUT body, and the version it was based on (None: no concurrency check).

    1. Server-owned fields: `type` must name this policy (400); `version`/`If-Match` become the expected
       version (checked under the row lock); an `updated_at` other than the current one is a stale document.
    2. `route`/`stages`: keep the one that changed.
    """
    fields = {k: v for k, v in document.items() if k not in SERVER_OWNED and k != "stages"}
    sent_type = document.get("type")
    if sent_type is not None and sent_type != policy_type:
        raise ValidationFailed(f"type is read-only: this is the {policy_type} policy",
                               errors={"type": [f"Read-only: this document is the {policy_type} policy."]})
    expected = document.get("version")
    header = _if_match_version(if_match)
    if expected is not None and header is not None and expected != header:
        raise ValidationFailed("version and If-Match disagree",
                               errors={"version": [f"If-Match says version {header}, the body {expected}."]})
    expected = expected if expected is not None else header
    sent_at: datetime | None = document.get("updated_at")
    if sent_at is not None and policy is not None and sent_at != policy.updated_at and expected in (None, policy.version):
        raise Conflict("the policy changed since this document was read (updated_at differs); GET it again",
                       slug="stale-version", errors={"updated_at": [f"Stale: now {iso(policy.updated_at)}."]})
    if "stages" in document:
        stages = document["stages"]
        route = document.get("route")
        current_stages = _stages_of(policy)
        current_route = [list(s["roles"]) for s in policy.route] if policy is not None else None
        if route is None or route == current_route:
            fields["route"] = stages
        elif stages == current_stages:
            fields["route"] = _keep_people(route, policy)  # only the roles-per-stage view was edited
        elif [s.get("roles") if isinstance(s, dict) else s for s in stages] != route:
            raise ValidationFailed("route and stages were both changed, differently: send one of them",
                                   errors={"route": ["Differs from stages; edit one of route and stages."]})
        else:
            fields["route"] = stages
    return fields, expected
