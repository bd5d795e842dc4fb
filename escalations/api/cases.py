"""Check, create, list and detail of escalations."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import Role
from audit.actions import AuditAction
from privacy.vault import prime
from trustguard.api.pagination import KeysetPagination
from trustguard.errors import ValidationFailed

from .. import selectors
from ..conditions import request_facts
from ..models import EscalationStatus, RiskLevel
from ..serializers import (
    CheckOutput,
    EscalationCheckInput,
    EscalationCreateInput,
    EscalationDetailOutput,
    EscalationOutput,
    EscalationPageOutput,
    ListFilterInput,
    escalation_dict,
)
from ..services import (
    SourceRef,
    escalation_check,
    escalation_create,
)
from .common import _ESCALATION_EXAMPLE, _ORDER_EXAMPLE, TAG_ESC, _money, _window, actor_of, validated


class EscalationCheckView(APIView):
    @extend_schema(
        tags=[TAG_ESC], operation_id="escalations_check", request=EscalationCheckInput, responses={200: CheckOutput},
        summary="Would this need a decision? (dry run, creates nothing)",
        examples=[
            OpenApiExample("High-value order", request_only=True,
                           value={"amount": {"value_minor": 250000000, "currency": "NGN"}}),
            OpenApiExample("Escalates", response_only=True, value={
                "requires_escalation": True, "type": "HIGH_VALUE", "reason": "amount 250000000 NGN >= 100000000",
                "risk_level": "medium", "approvals_required": 1,
                "route": [{"stage": 0, "role": "ceo", "roles": ["ceo"], "approvals_required": 1}]}),
        ],
    )
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        data = validated(EscalationCheckInput, request, actor=actor)
        source = data.get("source") or {}
        # The same facts as a create, so a conditional stage shows here exactly when it would apply.
        facts = request_facts(amount=_money(data.get("amount")), estimated_cost=_money(data.get("estimated_cost")),
                              risk_level=data.get("risk_level"),
                              urgency=data.get("urgency", "normal"), source_system=source.get("system", ""),
                              source_entity_type=source.get("entity_type", ""), payload=data.get("payload"))
        result = escalation_check(actor=actor, type=data.get("type"), amount=_money(data.get("amount")),
                                  flags=data.get("flags", ()), risk_level=data.get("risk_level"), facts=facts,
                                  estimated_cost=_money(data.get("estimated_cost")))
        return Response({"requires_escalation": result.requires_escalation, "type": result.type,
                         "reason": result.reason, "risk_level": result.risk_level,
                         "approvals_required": result.approvals_required, "route": result.route})


_LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=EscalationStatus.values),
    OpenApiParameter("type", str, description="Escalation type, e.g. HIGH_VALUE."),
    OpenApiParameter("assigned_role", str, description="A built-in role (" + ", ".join(Role.values)
                     + ") or one of the tenant's custom roles."),
    OpenApiParameter("risk_level", str, enum=RiskLevel.values),
    OpenApiParameter("source_entity_id", str, description="The id in the calling system, e.g. ORD-1001."),
    OpenApiParameter("contact_email", str, description="The customer's email (exact, case-insensitive; found by a "
                                                       "keyed blind index: contact data is encrypted at rest)."),
    OpenApiParameter("contact_phone", str, description="The customer's phone number, in any format (matched in E.164 "
                                                       "by blind index)."),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Created at or after (ISO 8601)."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Created before (ISO 8601)."),
    OpenApiParameter("mine", bool, description="People only: assigned to one of my roles."),
    OpenApiParameter("cursor", str, description="Opaque; take it from the `next` link."),
    OpenApiParameter("limit", int, description="Page size, 1-100 (default 25)."),
]


class EscalationCollectionView(APIView):
    @extend_schema(
        tags=[TAG_ESC], operation_id="escalations_list", parameters=_LIST_PARAMETERS,
        responses={200: EscalationPageOutput},
        summary="List escalations, most urgent deadline first",
        description="A key sees the escalations it created; a person with escalation.view_all sees the tenant's; "
                    "with escalation.view, those assigned to their roles. Cursor pagination: follow `next`.",
        examples=[OpenApiExample("A page", response_only=True, value={"next": None, "results": [_ESCALATION_EXAMPLE]})],
    )
    def get(self, request: Request) -> Response:
        actor = actor_of(request)
        params = ListFilterInput(data=request.query_params)  # `?type=` (empty) means "not given", as everywhere
        params.is_valid(raise_exception=True)
        f = params.validated_data
        queryset = selectors.escalation_list(
            actor=actor, status=f.get("status"), type=f.get("type"), assigned_role=f.get("assigned_role"),
            risk_level=f.get("risk_level"), source_entity_id=f.get("source_entity_id"),
            created_after=f.get("created_after"), created_before=f.get("created_before"), mine=f.get("mine", False),
            contact_email=f.get("contact_email"), contact_phone=f.get("contact_phone"))
        paginator = KeysetPagination(key="next_deadline_at",
                                     branches=selectors.queue_branches(actor=actor, mine=f.get("mine", False)))
        page = paginator.paginate_queryset(queryset, request, view=self)
        prime(page)  # sealed personal data of the whole page in two queries (privacy.vault)
        return paginator.get_paginated_response([escalation_dict(e) for e in page])

    @extend_schema(
        tags=[TAG_ESC], operation_id="escalations_create", request=EscalationCreateInput,
        responses={201: EscalationOutput},
        summary="Ask for a decision (requires Idempotency-Key)",
        description="Without `type`, the tenant's trigger rules choose it from `amount` and `flags`; if none "
                    "matches, 422 (see POST /escalations/check). A route needing no approval is created `approved`. "
                    "`template` applies a template's defaults; a pre-approved template within its limits is created "
                    "`approved`, recorded as pre-approved by that template version (`template.pre_approved`); outside "
                    "its limits the request follows the normal route. `execution_window`: 400 naming "
                    "`execution_window.ends_at` when it ends before it starts or in the past, `execution_window` when "
                    "longer than the policy's `max_window_seconds`.",
        examples=[OpenApiExample("High-value order", request_only=True, value=_ORDER_EXAMPLE),
                  OpenApiExample("A change with cost and window", request_only=True, value={
                      "type": "OPERATION_CHANGE", "reason": "Upgrade the orders database to 15.5", "risk_level": "medium",
                      "source": {"system": "dba-tool", "entity_type": "change", "entity_id": "CHG-77"},
                      "estimated_cost": {"value_minor": 12000000, "currency": "NGN"},
                      "execution_window": {"starts_at": "2026-11-24T22:00:00Z", "ends_at": "2026-11-25T02:00:00Z"}}),
                  OpenApiExample("A standard change from a template", request_only=True, value={
                      "template": "rds-minor-version",
                      "source": {"system": "dba-tool", "entity_type": "change", "entity_id": "CHG-78"}}),
                  OpenApiExample("Created", response_only=True, status_codes=["201"], value=_ESCALATION_EXAMPLE)],
    )
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        if not request.headers.get("Idempotency-Key"):
            raise ValidationFailed("POST /escalations requires an Idempotency-Key header (a fresh UUID per order)",
                                   errors={"Idempotency-Key": ["This header is required."]})
        data = validated(EscalationCreateInput, request, actor=actor)
        source = data["source"]
        escalation = escalation_create(
            actor=actor, reason=data.get("reason", ""),
            source=SourceRef(system=source["system"], entity_type=source["entity_type"],
                             entity_id=source["entity_id"], url=source.get("url", "")),
            type=data.get("type"), amount=_money(data.get("amount")), risk_level=data.get("risk_level"),
            urgency=data.get("urgency") or "normal", flags=data.get("flags", ()), payload=data.get("payload"),
            requested_by=data.get("requested_by", ""), contact=data.get("contact"),
            estimated_cost=_money(data.get("estimated_cost")), execution_window=_window(data.get("execution_window")),
            template=data.get("template"))
        # Built from the rows just written (the escalation, its approval, tenant and requester are in hand;
        # a new escalation has no decisions) instead of re-reading it with its relations: 1 query, not 3.
        body = escalation_dict(escalation, stages=list(escalation.approval.stages.all()), decisions=[])
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Location"] = f"/api/v1/escalations/{escalation.pk}"
        return response


class EscalationDetailView(APIView):
    @extend_schema(tags=[TAG_ESC], operation_id="escalations_retrieve", responses={200: EscalationDetailOutput},
                   summary="One escalation with its decisions and history",
                   examples=[OpenApiExample("Pending", response_only=True, value={**_ESCALATION_EXAMPLE, "history": [
                       {"seq": 41, "action": AuditAction.ESCALATION_CREATED.value, "actor": "api_key:vendor",
                        "actor_type": "api_key", "at": "2026-11-23T10:00:00Z", "before": None, "after": {"status": "pending"},
                        "details": {"trigger": "amount 250000000 NGN >= 100000000"}}]})])
    def get(self, request: Request, escalation_id: str) -> Response:
        actor = actor_of(request)
        escalation = selectors.escalation_get(actor=actor, escalation_id=escalation_id)
        return Response(escalation_dict(escalation, history=selectors.escalation_events(escalation=escalation)))
