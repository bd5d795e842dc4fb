"""Policies: the PUT /policies/{type} document and its output."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from trustguard.api.serializers import StrictIntegerField, StrictSerializer

from ..models import ExpiryOutcome, RiskLevel
from ..policies import CHANNELS
from .common import INT_MAX


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


class PolicyStageOutput(serializers.Serializer[Any]):
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


class PolicyOutput(serializers.Serializer[Any]):
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
