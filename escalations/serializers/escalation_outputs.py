"""The contract's Escalation, Decision and history outputs (RowOutputs), the list page, and the check
endpoint's answer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework import serializers

from approvals.models import ApprovalStage, Decision
from approvals.services import is_dismissed_in
from audit.models import AuditEvent
from privacy.vault import payload_for_display, requested_by_of, subjects_of

from .. import costs, obligations
from ..models import EscalationStatus, RiskLevel, Urgency
from ..schedule import window_dict
from .common import RowOutput, iso


class SourceOutput(serializers.Serializer[Any]):
    system = serializers.CharField()
    entity_type = serializers.CharField()
    entity_id = serializers.CharField()
    url = serializers.CharField(allow_null=True)


class AmountOutput(serializers.Serializer[Any]):
    value_minor = serializers.IntegerField()
    currency = serializers.CharField()


class RouteStageOutput(serializers.Serializer[Any]):
    stage = serializers.IntegerField()
    role = serializers.CharField(help_text="The role asked at this stage now.")
    roles = serializers.ListField(child=serializers.CharField(), help_text="Every role that may decide at this stage.")
    people = serializers.ListField(child=serializers.CharField(),
                                   help_text="Usernames the stage names, who may decide beside its roles (issue 22).")
    approvals_required = serializers.IntegerField()
    approvals_received = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ApprovalStage.Status.choices)


class DecisionOutput(RowOutput):
    id = serializers.UUIDField()
    escalation = serializers.UUIDField()
    decision = serializers.ChoiceField(choices=Decision.Kind.choices)
    justification = serializers.CharField()
    conditions = serializers.ListField(child=serializers.CharField())
    decided_by = serializers.CharField(help_text="Username of the person who decided.")
    role = serializers.CharField()
    stage = serializers.IntegerField()
    self_approved = serializers.BooleanField()
    defer_until = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField()
    on_behalf_of = serializers.CharField(allow_null=True, help_text=(
        "Username of the person the decider stood in for (an out-of-office delegation), else null. The pair "
        "counts as one approver."))
    dismissed = serializers.BooleanField(help_text="An approval given before an amendment: kept, counts for nothing.")

    @staticmethod
    def get_dismissed(decision: Decision, context: dict[str, Any]) -> bool:
        request_round = context.get("round")
        return bool(request_round and is_dismissed_in(decision, request_round))

    @staticmethod
    def get_escalation(decision: Decision, context: dict[str, Any]) -> str | None:
        return context.get("escalation_id")

    @staticmethod
    def get_decided_by(decision: Decision, context: dict[str, Any]) -> str:
        return decision.decided_by.username

    @staticmethod
    def get_on_behalf_of(decision: Decision, context: dict[str, Any]) -> str | None:
        return decision.on_behalf_of.username if decision.on_behalf_of is not None else None


def decision_dict(decision: Decision, escalation_id: str | None) -> dict[str, Any]:
    return DecisionOutput.render(decision, {"escalation_id": escalation_id})


class WindowOutput(serializers.Serializer[Any]):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


class EvidenceOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    note = serializers.CharField()
    url = serializers.CharField()
    added_by = serializers.CharField()
    added_at = serializers.DateTimeField()


class ConditionOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    text = serializers.CharField()
    owner = serializers.CharField(help_text="Username (or the requester's email / api_key:<name>).")
    due_at = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=[(s, s) for s in ("open", "met", "waived", "overdue")])
    evidence = EvidenceOutput(many=True)
    resolved_by = serializers.CharField(required=False)
    justification = serializers.CharField(required=False)


class TemplateRefOutput(serializers.Serializer[Any]):
    slug = serializers.CharField()
    name = serializers.CharField()
    version = serializers.IntegerField(help_text="The template version the case was made from.")
    pre_approved = serializers.BooleanField(help_text="True: approved at once by this template version.")


class RequesterOutput(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=[("user", "user"), ("api_key", "api_key")])
    name = serializers.CharField(help_text="Username, or the API key's name.")


class WaitingForOutput(serializers.Serializer[Any]):
    role = serializers.CharField()
    approvals_missing = serializers.IntegerField()


class EscalationOutput(RowOutput):
    """The contract's Escalation, from a row loaded with selectors.with_api_relations(); the context may give its
    approval's `stages` and `decisions` when the caller already holds them (escalation_dict)."""

    id = serializers.UUIDField()
    tenant = serializers.CharField(help_text="Tenant slug.")
    type = serializers.CharField()
    status = serializers.ChoiceField(choices=EscalationStatus.choices)
    reason = serializers.CharField()
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices)
    urgency = serializers.ChoiceField(choices=Urgency.choices)
    source = SourceOutput()  # type: ignore[assignment]  # a field named like Field.source
    amount = AmountOutput(allow_null=True)
    flags = serializers.ListField(child=serializers.CharField())
    payload = serializers.DictField()
    requested_by = serializers.CharField(allow_null=True, help_text="Email of the requesting person, if known.")
    requester = RequesterOutput(help_text="The credential that created it.")
    route = RouteStageOutput(many=True)
    current_stage = serializers.IntegerField()
    assigned_role = serializers.CharField()
    escalation_level = serializers.IntegerField(min_value=0, max_value=3)
    approvals_required = serializers.IntegerField()
    approvals_received = serializers.IntegerField()
    conditions = ConditionOutput(many=True, help_text="The approval's conditions, tracked as obligations.")
    estimated_cost = AmountOutput(allow_null=True)
    actual_cost = AmountOutput(allow_null=True)
    cost_variance = AmountOutput(allow_null=True, help_text="actual_cost - estimated_cost (same currency only).")
    execution_window = WindowOutput(allow_null=True)
    approval_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="An approval not executed by then expires (expiry_reason approval_lapsed).")
    expiry_reason = serializers.CharField(allow_null=True, help_text="undecided or approval_lapsed (when expired).")
    template = TemplateRefOutput(allow_null=True)
    waiting_for = WaitingForOutput(allow_null=True, help_text="Who must act next while it is open.")
    acknowledged_by = serializers.CharField(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    ack_due_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField()
    defer_until = serializers.DateTimeField(allow_null=True)
    next_deadline_at = serializers.DateTimeField(allow_null=True, help_text="The deadline the list is sorted by.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    executed_at = serializers.DateTimeField(allow_null=True)
    execution_result = serializers.DictField(allow_null=True)
    policy_version = serializers.IntegerField()
    decisions = DecisionOutput(many=True)

    @staticmethod
    def get_tenant(e: Any, context: dict[str, Any]) -> str:
        return str(e.tenant.slug)

    @staticmethod
    def get_source(e: Any, context: dict[str, Any]) -> dict[str, Any]:
        return {"system": e.source_system, "entity_type": e.source_entity_type, "entity_id": e.source_entity_id,
                "url": e.source_url or None}

    @staticmethod
    def get_amount(e: Any, context: dict[str, Any]) -> dict[str, Any] | None:
        return {"value_minor": e.amount_minor, "currency": e.currency} if e.amount_minor is not None else None

    @staticmethod
    def get_conditions(e: Any, context: dict[str, Any]) -> list[dict[str, Any]]:
        return obligations.normalized(e)

    @staticmethod
    def get_estimated_cost(e: Any, context: dict[str, Any]) -> dict[str, Any] | None:
        return costs.money_dict(costs.estimated(e))

    @staticmethod
    def get_actual_cost(e: Any, context: dict[str, Any]) -> dict[str, Any] | None:
        return costs.money_dict(costs.actual(e))

    @staticmethod
    def get_cost_variance(e: Any, context: dict[str, Any]) -> dict[str, Any] | None:
        return costs.money_dict(costs.variance(e))

    @staticmethod
    def get_execution_window(e: Any, context: dict[str, Any]) -> dict[str, Any] | None:
        return window_dict(e)

    @staticmethod
    def get_expiry_reason(e: Any, context: dict[str, Any]) -> str | None:
        return e.expiry_reason or None

    @staticmethod
    def get_payload(e: Any, context: dict[str, Any]) -> dict[str, Any]:
        # Personal payload fields are sealed at rest and shown masked (privacy.vault); subject export reveals them.
        return payload_for_display(e.payload, subjects=subjects_of(e))

    @staticmethod
    def get_requested_by(e: Any, context: dict[str, Any]) -> str | None:
        return requested_by_of(e) or None

    @staticmethod
    def get_requester(e: Any, context: dict[str, Any]) -> dict[str, Any]:
        if e.requested_by_user_id:
            return {"type": "user", "name": e.requested_by_user.username}
        return {"type": "api_key", "name": e.requested_by_api_key.name if e.requested_by_api_key_id else ""}

    @staticmethod
    def get_route(e: Any, context: dict[str, Any]) -> list[dict[str, Any]]:
        stages = context.get("stages")
        return [{"stage": s.index, "role": s.assigned_role, "roles": s.roles,
                 "people": sorted(person.username for person in s.people.all()),
                 "approvals_required": s.approvals_required, "approvals_received": s.approvals_received,
                 "status": s.status}
                for s in (e.approval.stages.all() if stages is None else stages)]

    @staticmethod
    def get_waiting_for(e: Any, context: dict[str, Any]) -> dict[str, Any] | None:
        if e.status not in ("pending", "acknowledged", "deferred"):
            return None
        return {"role": e.assigned_role, "approvals_missing": max(0, e.approvals_required - e.approvals_received)}

    @staticmethod
    def get_acknowledged_by(e: Any, context: dict[str, Any]) -> str | None:
        return e.acknowledged_by.username if e.acknowledged_by_id else None

    @staticmethod
    def get_decisions(e: Any, context: dict[str, Any]) -> list[dict[str, Any]]:
        decisions = context.get("decisions")
        decision_context = {"escalation_id": str(e.pk), "round": e.approval.round}
        return [DecisionOutput.render(d, decision_context)
                for d in (e.approval.decisions.all() if decisions is None else decisions)]


class HistoryEventOutput(RowOutput):
    seq = serializers.IntegerField(allow_null=True, help_text="Position in the tenant's audit chain; null for an event "
                                   "not sealed onto the chain yet (seconds: docs/AUDIT.md, \"Sealing\").")
    action = serializers.CharField()
    actor = serializers.CharField(help_text="Who acted: a username, api_key:<name> or system:<job>.")
    actor_type = serializers.ChoiceField(choices=[("user", "user"), ("api_key", "api_key"), ("system", "system")])
    at = serializers.DateTimeField()
    before = serializers.DictField(allow_null=True)
    after = serializers.DictField(allow_null=True)
    details = serializers.DictField()

    @staticmethod
    def get_actor(event: AuditEvent, context: dict[str, Any]) -> str:
        return event.actor_label

    @staticmethod
    def get_at(event: AuditEvent, context: dict[str, Any]) -> str | None:
        return iso(event.created_at)


class EscalationDetailOutput(EscalationOutput):
    history = HistoryEventOutput(many=True, help_text="The audit events of this escalation, oldest first.")

    @staticmethod
    def get_history(e: Any, context: dict[str, Any]) -> list[dict[str, Any]]:
        return [HistoryEventOutput.render(event) for event in context["history"]]


def escalation_dict(e: Any, *, stages: list[Any] | None = None, decisions: list[Any] | None = None,
                    history: Iterable[AuditEvent] | None = None) -> dict[str, Any]:
    """The contract's Escalation (EscalationOutput), or with `history` its detail (EscalationDetailOutput)."""
    context = {"stages": stages, "decisions": decisions, "history": history}
    return (EscalationOutput if history is None else EscalationDetailOutput).render(e, context)


class EscalationPageOutput(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last one.")
    results = EscalationOutput(many=True)


class CheckRouteStageOutput(serializers.Serializer[Any]):
    stage = serializers.IntegerField()
    role = serializers.CharField(help_text="The role asked first; empty for a stage of named people only.")
    roles = serializers.ListField(child=serializers.CharField())
    people = serializers.ListField(child=serializers.CharField(), help_text="Usernames the stage names (issue 22).")
    approvals_required = serializers.IntegerField()


class CheckOutput(serializers.Serializer[Any]):
    requires_escalation = serializers.BooleanField()
    type = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices, allow_null=True)
    approvals_required = serializers.IntegerField()
    route = CheckRouteStageOutput(many=True)
