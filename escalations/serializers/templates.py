"""Standard-change templates: the PUT /templates/{slug} document and its outputs."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from trustguard.api.serializers import JSONObjectField, StrictIntegerField, StrictSerializer

from ..models import RiskLevel
from .common import BIGINT_MAX, TYPE_PATTERN


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


class TemplateLimitsOutput(serializers.Serializer[Any]):
    max_amount_minor = serializers.IntegerField(required=False)
    max_risk_level = serializers.CharField(required=False)


class TemplateOutput(serializers.Serializer[Any]):
    slug = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField()
    defaults = serializers.DictField()
    pre_approved = serializers.BooleanField()
    limits = TemplateLimitsOutput()
    is_active = serializers.BooleanField()
    version = serializers.IntegerField(help_text="Bumped by every change; a case records the version it used.")
    updated_at = serializers.DateTimeField()


class TemplateListOutput(serializers.Serializer[Any]):
    results = TemplateOutput(many=True)
