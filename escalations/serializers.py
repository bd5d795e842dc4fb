"""API input and output serializers of escalations, decisions, OTP challenges and policies.

Inputs are StrictSerializers (unknown keys and wrong JSON types are 400). The escalation's outputs are
RowOutputs: their declared fields are both the OpenAPI schema and the body, rendered without DRF's
per-field machinery (the list endpoint is benchmarked).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from rest_framework import serializers

from approvals.models import ApprovalStage, Decision
from approvals.services import is_dismissed_in
from audit.models import AuditEvent
from privacy.vault import payload_for_display, requested_by_of, subjects_of
from trustguard.api.serializers import JSONObjectField, StrictIntegerField, StrictSerializer

from . import costs, obligations
from .models import EscalationStatus, ExpiryOutcome, Policy, RiskLevel, Urgency
from .policies import CHANNELS
from .schedule import window_dict

BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
TYPE_PATTERN = r"^[A-Z][A-Z0-9_]{0,63}$"


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


# --- inputs -------------------------------------------------------------------------------------

class SourceInput(StrictSerializer):
    system = serializers.CharField(max_length=100, help_text="The calling system, e.g. `shop`.")
    entity_type = serializers.CharField(max_length=100, help_text="What is being decided on, e.g. `order`.")
    entity_id = serializers.CharField(max_length=200, help_text="Its id in the calling system, e.g. `ORD-1001`.")
    url = serializers.URLField(max_length=500, required=False, allow_blank=True,
                               help_text="Where approvers can look at it in the calling system.")


class AmountInput(StrictSerializer):
    value_minor = StrictIntegerField(min_value=0, max_value=BIGINT_MAX,
                                     help_text="Whole minor units (kobo, cents) as a JSON integer; never a float.")
    currency = serializers.RegexField(r"^[A-Z]{3}$", max_length=3, help_text="ISO 4217 code, e.g. NGN.")


class ExecutionWindowInput(StrictSerializer):
    starts_at = serializers.DateTimeField(help_text="From when the approved change may be carried out (ISO 8601).")
    ends_at = serializers.DateTimeField(help_text="Until when; after it, execution is 409 and the approval lapses.")


class ContactInput(StrictSerializer):
    """A customer to keep informed ("your order is under review"); the phone is stored in E.164."""

    email = serializers.EmailField(required=False)
    phone = serializers.CharField(max_length=32, required=False, help_text="E.164 or national format.")
    name = serializers.CharField(max_length=200, required=False)


class EscalationCheckInput(StrictSerializer):
    type = serializers.RegexField(TYPE_PATTERN, max_length=64, required=False,
                                  help_text="Escalation type; omit it to let the tenant's trigger rules choose.")
    reason = serializers.CharField(max_length=5000, required=False)
    source = SourceInput(required=False)  # type: ignore[assignment]  # a field named like Field.source
    amount = AmountInput(required=False, allow_null=True)
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices, required=False)
    urgency = serializers.ChoiceField(choices=Urgency.choices, required=False)
    flags = serializers.ListField(child=serializers.CharField(max_length=64), max_length=20, required=False,
                                  help_text='Facts about the request, e.g. ["vendor_flagged"].')
    payload = JSONObjectField(required=False, help_text="Anything approvers should see; kept as given (max 64 KiB).")
    requested_by = serializers.EmailField(required=False, allow_blank=True,
                                          help_text="The person the source system acts for (four-eyes rule).")
    contact = ContactInput(required=False)
    estimated_cost = AmountInput(required=False, allow_null=True,
                                 help_text="What the change is expected to cost, in minor units with its own, explicit "
                                           "currency (it may differ from the amount's).")

    def validate_type(self, value: str) -> str:
        actor = self.context["actor"]
        if not Policy.objects.filter(tenant=actor.tenant, type=value, is_active=True).exists():
            raise serializers.ValidationError(f"No active policy for type {value}.")
        return value


class EscalationCreateInput(EscalationCheckInput):
    reason = serializers.CharField(max_length=5000, required=False, allow_blank=True,
                                   help_text="Why a person must decide (shown to approvers). Required unless the "
                                             "template gives one.")
    source = SourceInput()  # type: ignore[assignment]
    execution_window = ExecutionWindowInput(required=False, allow_null=True,
                                            help_text="When the approved change may be executed: starts_at < ends_at, "
                                                      "ends_at in the future, at most the policy's max_window_seconds.")
    template = serializers.SlugField(max_length=64, required=False,
                                     help_text="A template's slug: its defaults fill what the request leaves out; a "
                                               "pre-approved template within its limits approves the request at once.")


class DecisionInput(StrictSerializer):
    decision = serializers.ChoiceField(choices=Decision.Kind.choices)
    justification = serializers.CharField(max_length=5000, help_text="Required and not blank.")
    conditions = serializers.ListField(
        child=serializers.JSONField(), max_length=20, required=False,
        help_text="Conditions of an approval (approve only): plain strings, or obligations {text, owner?, due_at?} "
                  "(owner: a username, default the requester; due_at: default the policy's condition_due_seconds).")
    defer_until = serializers.DateTimeField(required=False, help_text="Required to defer; in the future.")
    otp = serializers.RegexField(r"^[0-9]{6,8}$", max_length=8,
                                 help_text="A fresh code: TOTP from the authenticator app, or from POST /otp/challenge.")


class EmptyInput(StrictSerializer):
    """No fields: an empty body or {}."""


class CancelInput(StrictSerializer):
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True)


class ExecutionInput(StrictSerializer):
    result = JSONObjectField(help_text="What the source system did, e.g. {\"shipment\": \"SHP-9\"}.")
    actual_cost = AmountInput(required=False, allow_null=True,
                              help_text="What the change actually cost (compared with estimated_cost: cost_variance).")


class EvidenceInput(StrictSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    url = serializers.CharField(max_length=1000, required=False, allow_blank=True,
                                help_text="An http(s) link (a ticket, a change record, an attachment's signed link).")


class ConditionMetInput(StrictSerializer):
    justification = serializers.CharField(max_length=5000, required=False, allow_blank=True,
                                          help_text="Optional when marking met.")


class ConditionWaiveInput(StrictSerializer):
    justification = serializers.CharField(max_length=5000, help_text="Why the condition no longer applies (required).")


class TemplateLimitsInput(StrictSerializer):
    max_amount_minor = StrictIntegerField(min_value=0, max_value=BIGINT_MAX, required=False, allow_null=True)
    max_risk_level = serializers.ChoiceField(choices=RiskLevel.choices, required=False, allow_blank=True)


class TemplateInput(StrictSerializer):
    """PUT /templates/{slug}: the document GET returned is accepted back (slug, version, updated_at ignored)."""

    slug = serializers.CharField(required=False, help_text="Ignored (read-only).")
    name = serializers.CharField(max_length=200, required=False)
    type = serializers.RegexField(TYPE_PATTERN, max_length=64, required=False)
    defaults = JSONObjectField(required=False, help_text="Any of reason, risk_level, urgency, payload, payload_schema, "
                                                         "justification.")
    pre_approved = serializers.BooleanField(required=False)
    limits = TemplateLimitsInput(required=False)
    is_active = serializers.BooleanField(required=False)
    version = serializers.IntegerField(required=False, help_text="Ignored (read-only).")
    updated_at = serializers.CharField(required=False, allow_null=True, help_text="Ignored (read-only).")


class TemplateLimitsOutput(serializers.Serializer):
    max_amount_minor = serializers.IntegerField(required=False)
    max_risk_level = serializers.CharField(required=False)


class TemplateOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField()
    defaults = serializers.DictField()
    pre_approved = serializers.BooleanField()
    limits = TemplateLimitsOutput()
    is_active = serializers.BooleanField()
    version = serializers.IntegerField(help_text="Bumped by every change; a case records the version it used.")
    updated_at = serializers.DateTimeField()


class TemplateListOutput(serializers.Serializer):
    results = TemplateOutput(many=True)


class OtpChallengeInput(StrictSerializer):
    escalation = serializers.UUIDField(help_text="The escalation the code will authorise a decision on.")
    channel = serializers.ChoiceField(choices=[("email", "email"), ("sms", "sms")])


class OtpChallengeOutput(serializers.Serializer):
    id = serializers.UUIDField()
    escalation = serializers.UUIDField()
    channel = serializers.CharField()
    expires_at = serializers.DateTimeField()


class ApprovalsByRiskInput(StrictSerializer):
    low = StrictIntegerField(min_value=0, max_value=20, required=False)
    medium = StrictIntegerField(min_value=0, max_value=20, required=False)
    high = StrictIntegerField(min_value=0, max_value=20, required=False)


class PolicyInput(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    route = serializers.ListField(
        child=serializers.JSONField(), min_length=1, max_length=10, required=False,
        help_text='Stages in order: a role, a list of roles, or {"roles": [...], "approvals_required": n}. '
                  "Required when creating a policy.")
    approvals_by_risk = ApprovalsByRiskInput(required=False)
    default_risk_level = serializers.ChoiceField(choices=RiskLevel.choices, required=False)
    ack_sla_seconds = StrictIntegerField(min_value=60, max_value=INT_MAX, required=False)
    expiry_seconds = StrictIntegerField(min_value=60, max_value=INT_MAX, required=False)
    stages = serializers.ListField(
        child=serializers.JSONField(), min_length=1, max_length=10, required=False,
        help_text='The route as stage objects {"roles": [...], "people": [username, ...]?, "approvals_required": '
                  'n | null, "when": condition?} (as GET returns them). Send route or stages; when both, the one '
                  "that changed wins.")
    # The tenant's roles (built-in and custom) are checked by the policy rules, which know the tenant.
    ladder = serializers.ListField(child=serializers.CharField(max_length=64), max_length=6, required=False)
    max_escalation_level = StrictIntegerField(min_value=0, max_value=3, required=False)
    notify_channels = serializers.ListField(child=serializers.ChoiceField(choices=[(c, c) for c in CHANNELS]),
                                            max_length=len(CHANNELS), required=False)
    single_employee_mode = serializers.BooleanField(required=False)
    expiry_outcome = serializers.ChoiceField(choices=ExpiryOutcome.choices, required=False)
    high_risk_expiry_outcome = serializers.ChoiceField(choices=ExpiryOutcome.choices, required=False)
    max_deferral_seconds = StrictIntegerField(
        min_value=60, max_value=INT_MAX, required=False,
        help_text="How far ahead a deferral may reach (default 30 days); a later defer_until is 400.")
    deferral_may_extend_expiry = serializers.BooleanField(
        required=False, help_text="false (default): defer_until may not pass the case's expires_at (400). true: it may; "
                                  "such a deferral is audited and its escalation.deferred event says extends_expiry.")
    approval_ttl_seconds = StrictIntegerField(
        min_value=60, max_value=INT_MAX, required=False, allow_null=True,
        help_text="How long an approval stays valid before it must be executed; approval_expires_at is the earlier "
                  "of this and the execution window's end. null: no TTL.")
    max_window_seconds = StrictIntegerField(min_value=60, max_value=INT_MAX, required=False,
                                            help_text="The longest execution_window a request may ask (default 30 days).")
    condition_due_seconds = StrictIntegerField(
        min_value=60, max_value=INT_MAX, required=False,
        help_text="When a condition of an approval falls due unless the approver gives due_at (default 7 days).")
    amendments_take_current_version = serializers.BooleanField(
        required=False, help_text="false (default): an amended case keeps the policy version it started under. true: "
                                  "an amendment moves it to this policy's current version.")
    is_active = serializers.BooleanField(required=False)
    # Server-owned (CONTRACT.md section 5 "Round trips"): accepted back when equal to the current value.
    type = serializers.CharField(max_length=64, required=False, help_text="Read-only; must name this policy.")
    version = StrictIntegerField(min_value=0, max_value=INT_MAX, required=False,
                                 help_text="The version this document was read at; a stale one is 409.")
    updated_at = serializers.DateTimeField(required=False, help_text="Read-only; ignored when current, else 409.")
    effective_approvals = serializers.JSONField(required=False, help_text="Computed by the server; ignored.")


class ListFilterInput(serializers.Serializer):
    """Query parameters of GET /escalations (validated: an unknown value is a 400, not an empty list)."""

    status = serializers.ChoiceField(choices=EscalationStatus.choices, required=False)
    type = serializers.CharField(max_length=64, required=False)
    assigned_role = serializers.CharField(max_length=32, required=False,
                                          help_text="A built-in role or one of the tenant's custom roles.")
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices, required=False)
    source_entity_id = serializers.CharField(max_length=200, required=False)
    contact_email = serializers.CharField(max_length=254, required=False)
    contact_phone = serializers.CharField(max_length=64, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    mine = serializers.BooleanField(required=False, default=False)
    cursor = serializers.CharField(required=False, max_length=500)
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False)


# --- outputs --------------------------------------------------------------------------------------

class SourceOutput(serializers.Serializer):
    system = serializers.CharField()
    entity_type = serializers.CharField()
    entity_id = serializers.CharField()
    url = serializers.CharField(allow_null=True)


class AmountOutput(serializers.Serializer):
    value_minor = serializers.IntegerField()
    currency = serializers.CharField()


class RouteStageOutput(serializers.Serializer):
    stage = serializers.IntegerField()
    role = serializers.CharField(help_text="The role asked at this stage now.")
    roles = serializers.ListField(child=serializers.CharField(), help_text="Every role that may decide at this stage.")
    approvals_required = serializers.IntegerField()
    approvals_received = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ApprovalStage.Status.choices)


class RowOutput(serializers.Serializer):
    """An output whose declared fields are its response: the schema and the body come from one declaration.

    Each field is read from the row by the class's `get_<name>(row, context)` where there is one, else as the
    row's attribute of that name (a UUID as text; a datetime in ISO 8601 with Z). `render` builds the body
    without DRF's per-field machinery: the list endpoint is benchmarked, and field-by-field DRF rendering of
    prefetched rows is several times slower.
    """

    _readers: ClassVar[list[tuple[str, Callable[[Any, dict[str, Any]], Any]]]]

    @classmethod
    def readers(cls) -> list[tuple[str, Callable[[Any, dict[str, Any]], Any]]]:
        readers = cls.__dict__.get("_readers")
        if readers is None:
            readers = [(name, cls._reader(name, field)) for name, field in cls._declared_fields.items()]
            cls._readers = readers
        return readers

    @classmethod
    def _reader(cls, name: str, field: serializers.Field) -> Callable[[Any, dict[str, Any]], Any]:
        explicit = getattr(cls, f"get_{name}", None)
        if explicit is not None:
            return cast(Callable[[Any, dict[str, Any]], Any], explicit)
        if isinstance(field, serializers.DateTimeField):
            return lambda row, context: iso(getattr(row, name))
        if isinstance(field, serializers.UUIDField):
            return lambda row, context: str(getattr(row, name))
        return lambda row, context: getattr(row, name)

    @classmethod
    def render(cls, row: Any, context: dict[str, Any] | None = None) -> dict[str, Any]:
        context = context or {}
        return {name: read(row, context) for name, read in cls.readers()}

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return self.render(instance, dict(self.context))


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


class WindowOutput(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


class EvidenceOutput(serializers.Serializer):
    id = serializers.CharField()
    note = serializers.CharField()
    url = serializers.CharField()
    added_by = serializers.CharField()
    added_at = serializers.DateTimeField()


class ConditionOutput(serializers.Serializer):
    id = serializers.CharField()
    text = serializers.CharField()
    owner = serializers.CharField(help_text="Username (or the requester's email / api_key:<name>).")
    due_at = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=[(s, s) for s in ("open", "met", "waived", "overdue")])
    evidence = EvidenceOutput(many=True)
    resolved_by = serializers.CharField(required=False)
    justification = serializers.CharField(required=False)


class TemplateRefOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    version = serializers.IntegerField(help_text="The template version the case was made from.")
    pre_approved = serializers.BooleanField(help_text="True: approved at once by this template version.")


class RequesterOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=[("user", "user"), ("api_key", "api_key")])
    name = serializers.CharField(help_text="Username, or the API key's name.")


class WaitingForOutput(serializers.Serializer):
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
    source = SourceOutput()  # type: ignore[assignment]
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
        return [{"stage": s.index, "role": s.assigned_role, "roles": s.roles, "approvals_required": s.approvals_required,
                 "approvals_received": s.approvals_received, "status": s.status}
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
    seq = serializers.IntegerField(help_text="Position in the tenant's audit chain.")
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


class EscalationPageOutput(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last one.")
    results = EscalationOutput(many=True)


class CheckRouteStageOutput(serializers.Serializer):
    stage = serializers.IntegerField()
    role = serializers.CharField(help_text="The role asked first; empty for a stage of named people only.")
    roles = serializers.ListField(child=serializers.CharField())
    people = serializers.ListField(child=serializers.CharField(), help_text="Usernames the stage names (issue 22).")
    approvals_required = serializers.IntegerField()


class CheckOutput(serializers.Serializer):
    requires_escalation = serializers.BooleanField()
    type = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices, allow_null=True)
    approvals_required = serializers.IntegerField()
    route = CheckRouteStageOutput(many=True)


class PolicyStageOutput(serializers.Serializer):
    roles = serializers.ListField(child=serializers.CharField())
    people = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="Usernames of the tenant's members named on the stage, who may decide whatever their roles "
                  "(beside or instead of roles). Present when the stage names someone.")
    approvals_required = serializers.IntegerField(allow_null=True,
                                                  help_text="null: \"by risk\", taken from approvals_by_risk "
                                                            "(1 where a level is empty). A number always wins.")
    when = serializers.JSONField(required=False, help_text="A routing condition (escalations.conditions): the stage "
                                                           "applies only to requests where it holds.")


class PolicyOutput(serializers.Serializer):
    type = serializers.CharField()
    name = serializers.CharField()
    route = serializers.ListField(child=serializers.ListField(child=serializers.CharField()),
                                  help_text="Roles per stage, in order.")
    stages = PolicyStageOutput(many=True, help_text="The route with each stage's approvals_required.")
    approvals_by_risk = serializers.DictField(child=serializers.IntegerField())
    default_risk_level = serializers.ChoiceField(choices=RiskLevel.choices)
    effective_approvals = serializers.ListField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text="Per stage, the approvals needed at each risk level (read-only, computed).")
    ack_sla_seconds = serializers.IntegerField()
    expiry_seconds = serializers.IntegerField()
    ladder = serializers.ListField(child=serializers.CharField())
    max_escalation_level = serializers.IntegerField()
    notify_channels = serializers.ListField(child=serializers.CharField())
    single_employee_mode = serializers.BooleanField()
    expiry_outcome = serializers.ChoiceField(choices=ExpiryOutcome.choices)
    high_risk_expiry_outcome = serializers.ChoiceField(choices=ExpiryOutcome.choices)
    max_deferral_seconds = serializers.IntegerField()
    deferral_may_extend_expiry = serializers.BooleanField()
    approval_ttl_seconds = serializers.IntegerField(allow_null=True)
    max_window_seconds = serializers.IntegerField()
    condition_due_seconds = serializers.IntegerField()
    amendments_take_current_version = serializers.BooleanField()
    is_active = serializers.BooleanField()
    version = serializers.IntegerField()
    updated_at = serializers.DateTimeField()

