"""API of change management: conditions as obligations (evidence, met, waive) and templates (CONTRACT.md 5).

Thin views over escalations.obligations and escalations.standard_changes.
"""

from __future__ import annotations

import re

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import Capability
from trustguard.errors import PermissionDenied, ValidationFailed

from .api import TAG_ESC, actor_of, escalation_response, validated
from .models import ChangeTemplate
from .obligation_actions import condition_add_evidence, condition_resolve
from .obligations import MET, WAIVED
from .serializers import (
    ConditionMetInput,
    ConditionWaiveInput,
    EscalationOutput,
    EvidenceInput,
    TemplateInput,
    TemplateListOutput,
    TemplateOutput,
)
from .standard_changes import template_dict, template_get, template_upsert

TAG_TEMPLATES = "Templates"
SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")


class ConditionEvidenceView(APIView):
    @extend_schema(tags=[TAG_ESC], operation_id="conditions_evidence", request=EvidenceInput,
                   responses={201: EscalationOutput}, summary="Add evidence to a condition (owner, requester, approver)",
                   description="A note and/or an http(s) link. 403 for anyone else; 409 when the condition is "
                               "already met or waived.",
                   examples=[OpenApiExample("Change record", request_only=True, value={
                       "note": "Backup verified", "url": "https://tickets.example/CHG-42"})])
    def post(self, request: Request, escalation_id: str, condition_id: str) -> Response:
        actor = actor_of(request)
        data = validated(EvidenceInput, request)
        escalation = condition_add_evidence(actor=actor, escalation=escalation_id, condition_id=condition_id,
                                            note=data.get("note", ""), url=data.get("url", ""))
        return escalation_response(actor, escalation.pk, status.HTTP_201_CREATED)


class ConditionMetView(APIView):
    @extend_schema(tags=[TAG_ESC], operation_id="conditions_met", request=ConditionMetInput,
                   responses={200: EscalationOutput}, summary="Mark a condition met (approvers)",
                   description="An approver of the case (escalation.decide and a role of its route; never the "
                               "requester): 403 otherwise. Audited; no one-time code needed.")
    def post(self, request: Request, escalation_id: str, condition_id: str) -> Response:
        actor = actor_of(request)
        data = validated(ConditionMetInput, request)
        escalation = condition_resolve(actor=actor, escalation=escalation_id, condition_id=condition_id, status=MET,
                                       justification=data.get("justification", ""))
        return escalation_response(actor, escalation.pk)


class ConditionWaiveView(APIView):
    @extend_schema(tags=[TAG_ESC], operation_id="conditions_waive", request=ConditionWaiveInput,
                   responses={200: EscalationOutput}, summary="Waive a condition, with a justification (approvers)",
                   examples=[OpenApiExample("Waive", request_only=True,
                                            value={"justification": "Superseded by the new runbook."})])
    def post(self, request: Request, escalation_id: str, condition_id: str) -> Response:
        actor = actor_of(request)
        data = validated(ConditionWaiveInput, request)
        escalation = condition_resolve(actor=actor, escalation=escalation_id, condition_id=condition_id,
                                       status=WAIVED, justification=data["justification"])
        return escalation_response(actor, escalation.pk)


_TEMPLATE_EXAMPLE = {
    "slug": "rds-minor-version", "name": "RDS minor version upgrade", "type": "OPERATION_CHANGE",
    "defaults": {"reason": "Minor engine upgrade in the maintenance window", "risk_level": "low",
                 "justification": "Standard change SC-12"},
    "pre_approved": True, "limits": {"max_amount_minor": 50000000, "max_risk_level": "medium"},
    "is_active": True, "version": 2, "updated_at": "2026-11-23T10:00:00Z",
}


def _slug(slug: str) -> str:
    if not SLUG.fullmatch(slug):
        raise ValidationFailed("a template slug is letters, digits, - and _", errors={"slug": ["A slug."]})
    return slug


class TemplateCollectionView(APIView):
    @extend_schema(tags=[TAG_TEMPLATES], operation_id="templates_list", responses={200: TemplateListOutput},
                   summary="The tenant's templates (standard changes)",
                   examples=[OpenApiExample("One", response_only=True, value={"results": [_TEMPLATE_EXAMPLE]})])
    def get(self, request: Request) -> Response:
        actor = actor_of(request)
        templates = ChangeTemplate.objects.filter(tenant=actor.tenant).order_by("slug")
        return Response({"results": [template_dict(t) for t in templates]})


class TemplateView(APIView):
    @extend_schema(tags=[TAG_TEMPLATES], operation_id="templates_retrieve", responses={200: TemplateOutput},
                   summary="One template", examples=[OpenApiExample("Standard change", response_only=True,
                                                                    value=_TEMPLATE_EXAMPLE)])
    def get(self, request: Request, slug: str) -> Response:
        actor = actor_of(request)
        return Response(template_dict(template_get(tenant=actor.tenant, slug=_slug(slug))))

    @extend_schema(tags=[TAG_TEMPLATES], operation_id="templates_update", request=TemplateInput,
                   responses={200: TemplateOutput, 201: TemplateOutput},
                   summary="Create or change a template (policy.manage)",
                   description="Fields not sent keep their value (a new template needs name and type). Each change "
                               "bumps `version`; cases already made keep the version they used. The GET document "
                               "is accepted back as it is.",
                   examples=[OpenApiExample("Pre-approved standard change", request_only=True, value={
                       k: v for k, v in _TEMPLATE_EXAMPLE.items() if k not in ("slug", "version", "updated_at")})])
    def put(self, request: Request, slug: str) -> Response:
        actor = actor_of(request)
        if not actor.can(Capability.POLICY_MANAGE):
            raise PermissionDenied("managing templates needs policy.manage", slug="missing-capability")
        data = validated(TemplateInput, request)
        for read_only in ("slug", "version", "updated_at"):
            data.pop(read_only, None)
        template, created = template_upsert(actor=actor, slug=_slug(slug), fields=data)
        return Response(template_dict(template), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
