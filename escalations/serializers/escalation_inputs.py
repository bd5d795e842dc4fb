"""Request bodies and query parameters of the escalation endpoints (check, create, decide, cancel,
execute, conditions, OTP challenge, list filters)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from approvals.models import Decision
from trustguard.api.serializers import JSONObjectField, StrictIntegerField, StrictSerializer

from ..models import EscalationStatus, Policy, RiskLevel, Urgency
from .common import BIGINT_MAX, TYPE_PATTERN


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
    source = SourceInput()
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


class OtpChallengeInput(StrictSerializer):
    escalation = serializers.UUIDField(help_text="The escalation the code will authorise a decision on.")
    channel = serializers.ChoiceField(choices=[("email", "email"), ("sms", "sms")])


class OtpChallengeOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    escalation = serializers.UUIDField()
    channel = serializers.CharField()
    expires_at = serializers.DateTimeField()


class ListFilterInput(serializers.Serializer[Any]):
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
