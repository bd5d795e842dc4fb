"""The vendor REST API of escalations, decisions, OTP challenges and policies (CONTRACT.md section 3).

Views are thin: validate input with a StrictSerializer, call one service or selector, serialize.
Errors are DomainErrors / DRF exceptions, turned into problem+json by trustguard.api.errors.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actors import Actor
from accounts.roles import Capability, Role
from audit.actions import AuditAction
from privacy.vault import prime
from trustguard.api.pagination import KeysetPagination
from trustguard.errors import NotFound, PermissionDenied, ValidationFailed

from . import selectors
from .conditions import request_facts
from .intake import ExecutionWindow
from .models import EscalationStatus, Policy, RiskLevel
from .policies import policy_upsert
from .policy_documents import policy_document, policy_etag, policy_fields_from_document
from .serializers import (
    TYPE_PATTERN,
    CancelInput,
    CheckOutput,
    DecisionInput,
    EmptyInput,
    EscalationCheckInput,
    EscalationCreateInput,
    EscalationDetailOutput,
    EscalationOutput,
    EscalationPageOutput,
    ExecutionInput,
    ListFilterInput,
    OtpChallengeInput,
    OtpChallengeOutput,
    PolicyInput,
    PolicyOutput,
    escalation_dict,
    iso,
)
from .services import (
    Money,
    SourceRef,
    escalation_acknowledge,
    escalation_cancel,
    escalation_check,
    escalation_create,
    escalation_decide,
    escalation_record_execution,
)
from .stepup import otp_challenge_send

TAG_ESC = "Escalations"

_ORDER_EXAMPLE = {
    "reason": "Order above the ₦1,000,000 threshold",
    "source": {"system": "shop", "entity_type": "order", "entity_id": "ORD-1001",
               "url": "https://shop.example/orders/ORD-1001"},
    "amount": {"value_minor": 250000000, "currency": "NGN"},
    "urgency": "high",
    "payload": {"customer": "C-77", "items": 3},
    "requested_by": "buyer@shop.example",
}
_ESCALATION_EXAMPLE = {
    "id": "7d5b2c0e-4d7a-4c1b-9a53-2f1e8f3c9b10", "tenant": "demo", "type": "HIGH_VALUE", "status": "pending",
    "reason": "Order above the ₦1,000,000 threshold", "risk_level": "medium", "urgency": "high",
    "source": {"system": "shop", "entity_type": "order", "entity_id": "ORD-1001",
               "url": "https://shop.example/orders/ORD-1001"},
    "amount": {"value_minor": 250000000, "currency": "NGN"}, "flags": [], "payload": {"customer": "C-77", "items": 3},
    "requested_by": "buyer@shop.example", "requester": {"type": "api_key", "name": "vendor"},
    "route": [{"stage": 0, "role": "ceo", "roles": ["ceo"], "approvals_required": 1, "approvals_received": 0,
               "status": "open"}],
    "current_stage": 0, "assigned_role": "ceo", "escalation_level": 0, "approvals_required": 1,
    "approvals_received": 0, "conditions": [], "estimated_cost": None, "actual_cost": None, "cost_variance": None,
    "execution_window": None, "approval_expires_at": None, "expiry_reason": None, "template": None,
    "waiting_for": {"role": "ceo", "approvals_missing": 1},
    "acknowledged_by": None, "acknowledged_at": None, "ack_due_at": "2026-11-23T14:00:00Z",
    "expires_at": "2026-11-24T10:00:00Z", "defer_until": None, "next_deadline_at": "2026-11-23T14:00:00Z",
    "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z", "decided_at": None,
    "executed_at": None, "execution_result": None, "policy_version": 1, "decisions": [],
}


def actor_of(request: Request) -> Actor:
    actor = request.user
    assert isinstance(actor, Actor)
    return actor


def validated(serializer_class: type, request: Request, **context: Any) -> dict[str, Any]:
    data = request.data if request.data is not None else {}
    serializer = serializer_class(data=data, context={"request": request, **context})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def escalation_response(actor: Actor, escalation_id: Any, code: int = status.HTTP_200_OK) -> Response:
    """The escalation as it is now (fresh from the database, with relations)."""
    escalation = selectors.with_api_relations(
        selectors.Escalation.objects.actionable_by(actor).filter(pk=escalation_id)).get()
    return Response(escalation_dict(escalation), status=code)


def _money(data: dict[str, Any] | None) -> Money | None:
    return Money(value_minor=data["value_minor"], currency=data["currency"]) if data else None


def _window(data: dict[str, Any] | None) -> ExecutionWindow | None:
    return ExecutionWindow(starts_at=data["starts_at"], ends_at=data["ends_at"]) if data else None


# --- check, create, list, detail --------------------------------------------------------------------

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


# --- actions ----------------------------------------------------------------------------------------

class EscalationAcknowledgeView(APIView):
    @extend_schema(tags=[TAG_ESC], operation_id="escalations_acknowledge", request=EmptyInput,
                   responses={200: EscalationOutput},
                   summary="Take it: pending -> acknowledged (assigned role)",
                   description="Stops re-escalation at this level. The body is empty or {}. After the escalation's "
                               "`expires_at`: 409 (`deadline-passed`, naming the deadline), and the escalation takes "
                               "its expiry outcome at once, whether or not the sweep has run.",
                   examples=[OpenApiExample("Acknowledged", response_only=True, value={
                       **_ESCALATION_EXAMPLE, "status": "acknowledged", "acknowledged_by": "ceo",
                       "acknowledged_at": "2026-11-23T10:05:00Z"})])
    def post(self, request: Request, escalation_id: str) -> Response:
        actor = actor_of(request)
        validated(EmptyInput, request)
        escalation = selectors.escalation_for_action(actor=actor, escalation_id=escalation_id)
        escalation_acknowledge(actor=actor, escalation=escalation)
        return escalation_response(actor, escalation.pk)


class EscalationDecisionView(APIView):
    @extend_schema(
        tags=[TAG_ESC], operation_id="escalations_decide", request=DecisionInput, responses={201: EscalationOutput},
        summary="Approve, reject or defer (assigned role, fresh OTP)",
        description="Needs a one-time code: TOTP from the person's authenticator app, or a code from "
                    "POST /otp/challenge. A code counts once (replay: 403); 5 wrong codes lock deciding for 15 "
                    "minutes (429). The requester never approves their own escalation (403, four eyes). After "
                    "the escalation's `expires_at`: 409 (`deadline-passed`, with `deadline: \"expires_at\"`), and "
                    "the escalation takes its expiry outcome at once, whether or not the sweep has run. A deferral's "
                    "`defer_until` is at most the policy's `max_deferral_seconds` ahead (default 30 days) and not "
                    "after `expires_at` unless the policy has `deferral_may_extend_expiry` (400 naming defer_until). "
                    "A delegate standing in for someone away (POST /delegations) decides with their own code on "
                    "the delegator's behalf: the decision carries `on_behalf_of`; the pair counts as one approver "
                    "(409 on a second approval by either) and never decides what either of them requested (403).",
        examples=[OpenApiExample("Approve with a condition", request_only=True, value={
            "decision": "approve", "justification": "Customer known for 3 years; stock reserved.",
            "conditions": ["Ship only after payment clears"], "otp": "123456"}),
            OpenApiExample("Defer", request_only=True, value={
                "decision": "defer", "justification": "Waiting for the KYC refresh.",
                "defer_until": "2026-11-24T09:00:00Z", "otp": "123456"}),
            OpenApiExample("Approve with an obligation", request_only=True, value={
                "decision": "approve", "justification": "Tested on staging.", "otp": "123456",
                "conditions": [{"text": "Attach the rollback plan", "owner": "ops", "due_at": "2026-11-25T17:00:00Z"}]}),
            OpenApiExample("Approved", response_only=True, status_codes=["201"], value={
                **_ESCALATION_EXAMPLE, "status": "approved", "approvals_received": 1, "waiting_for": None,
                "decided_at": "2026-11-23T10:07:00Z", "conditions": [{
                    "id": "01934f2a-5b6c-7d8e-9f01-23456789abcd", "text": "Ship only after payment clears",
                    "owner": "api_key:vendor", "due_at": "2026-11-30T10:07:00Z", "status": "open", "evidence": []}],
                "decisions": [{"id": "0b6f1a52-3c1d-4d55-8f0e-5b8f6f2f4a11",
                               "escalation": _ESCALATION_EXAMPLE["id"], "decision": "approve",
                               "justification": "Customer known for 3 years; stock reserved.",
                               "conditions": ["Ship only after payment clears"], "decided_by": "ceo", "role": "ceo",
                               "stage": 0, "self_approved": False, "defer_until": None,
                               "decided_at": "2026-11-23T10:07:00Z"}]})],
    )
    def post(self, request: Request, escalation_id: str) -> Response:
        actor = actor_of(request)
        data = validated(DecisionInput, request)
        # The service looks the id up in the actor's scope (404 as escalation_for_action) in its locking
        # read, and returns the escalation as committed with everything the body shows: no read-back.
        escalation = escalation_decide(actor=actor, escalation=escalation_id, decision=data["decision"],
                                       justification=data["justification"], otp=data["otp"],
                                       conditions=data.get("conditions", ()), defer_until=data.get("defer_until"))
        return Response(escalation_dict(escalation), status=status.HTTP_201_CREATED)


class EscalationCancelView(APIView):
    @extend_schema(tags=[TAG_ESC], operation_id="escalations_cancel", request=CancelInput,
                   responses={200: EscalationOutput}, summary="Withdraw it (the requester only)",
                   examples=[OpenApiExample("Cancel", request_only=True, value={"reason": "Customer cancelled"}),
                             OpenApiExample("Cancelled", response_only=True,
                                            value={**_ESCALATION_EXAMPLE, "status": "cancelled", "waiting_for": None})])
    def post(self, request: Request, escalation_id: str) -> Response:
        actor = actor_of(request)
        data = validated(CancelInput, request)
        escalation = selectors.escalation_for_action(actor=actor, escalation_id=escalation_id)
        escalation_cancel(actor=actor, escalation=escalation, reason=data.get("reason", ""))
        return escalation_response(actor, escalation.pk)


class EscalationExecutionView(APIView):
    @extend_schema(tags=[TAG_ESC], operation_id="escalations_execution", request=ExecutionInput,
                   responses={200: EscalationOutput}, summary="Report that the approved action was carried out",
                   description="With `actual_cost` (compared with estimated_cost: cost_variance). 409 "
                               "`outside-execution-window` (the window in the problem's `execution_window`) before "
                               "the window opens or after it closes; 409 `conditions-unmet` (naming them in "
                               "`conditions`) while a condition is open or overdue; 409 `deadline-passed` with "
                               "`deadline: approval_expires_at` once the approval lapsed (it is then expired).",
                   examples=[OpenApiExample("Shipped", request_only=True,
                                            value={"result": {"shipment": "SHP-9", "shipped": True}}),
                             OpenApiExample("Executed", response_only=True, value={
                                 **_ESCALATION_EXAMPLE, "status": "executed", "waiting_for": None,
                                 "executed_at": "2026-11-23T11:00:00Z", "execution_result": {"shipment": "SHP-9"}})])
    def post(self, request: Request, escalation_id: str) -> Response:
        actor = actor_of(request)
        data = validated(ExecutionInput, request)
        escalation = selectors.escalation_for_action(actor=actor, escalation_id=escalation_id)
        escalation_record_execution(actor=actor, escalation=escalation, result=data["result"],
                                    actual_cost=_money(data.get("actual_cost")))
        return escalation_response(actor, escalation.pk)


# --- OTP challenge ------------------------------------------------------------------------------------

class OtpChallengeView(APIView):
    @extend_schema(
        tags=["Step-up"], operation_id="otp_challenge", request=OtpChallengeInput, responses={201: OtpChallengeOutput},
        summary="Send me a one-time code for deciding an escalation",
        description="For people without an authenticator app at hand. The code is bound to you and to the "
                    "escalation as it is now, single use, valid 5 minutes. At most 5 codes per 10 minutes (429).",
        examples=[OpenApiExample("By SMS", request_only=True,
                                 value={"escalation": "7d5b2c0e-4d7a-4c1b-9a53-2f1e8f3c9b10", "channel": "sms"}),
                  OpenApiExample("Sent", response_only=True, status_codes=["201"], value={
                      "id": "5e0c3a5e-7d0b-4a39-9a5f-0c2b1c7e9d21", "escalation": "7d5b2c0e-4d7a-4c1b-9a53-2f1e8f3c9b10",
                      "channel": "sms", "expires_at": "2026-11-23T10:10:00Z"})],
    )
    def post(self, request: Request) -> Response:
        actor = actor_of(request)
        data = validated(OtpChallengeInput, request)
        if actor.user is None:
            raise PermissionDenied("only a person can receive a one-time code", slug="person-required")
        escalation = selectors.escalation_for_action(actor=actor, escalation_id=data["escalation"])
        challenge = otp_challenge_send(actor=actor, escalation=escalation, channel=data["channel"])
        return Response({"id": str(challenge.id), "escalation": str(escalation.pk), "channel": challenge.channel,
                         "expires_at": iso(challenge.expires_at)}, status=status.HTTP_201_CREATED)


# --- policies ----------------------------------------------------------------------------------------

def _check_policy_type(policy_type: str) -> None:
    import re

    if not re.fullmatch(TYPE_PATTERN, policy_type):
        raise ValidationFailed("a policy type is an upper-case code such as HIGH_VALUE",
                               errors={"type": ["Upper-case letters, digits and _, starting with a letter."]})


_POLICY_EXAMPLE = {
    "type": "OPERATION_CHANGE", "name": "Production change", "route": [["senior_manager"]],
    "stages": [{"roles": ["senior_manager"], "approvals_required": None}],
    "approvals_by_risk": {"low": 0, "medium": 1, "high": 2}, "default_risk_level": "medium",
    "ack_sla_seconds": 14400, "expiry_seconds": 259200,
    "ladder": ["compliance_officer", "senior_manager", "governing_body"], "max_escalation_level": 2,
    "notify_channels": ["email", "in_app"], "single_employee_mode": False, "expiry_outcome": "expire",
    "high_risk_expiry_outcome": "expire", "is_active": True, "version": 3, "updated_at": "2026-11-23T10:00:00Z",
}
_TYPE_PARAM = OpenApiParameter("policy_type", str, OpenApiParameter.PATH, pattern=TYPE_PATTERN,
                               description="Escalation type, e.g. HIGH_VALUE.")


class PolicyView(APIView):
    def _actor(self, request: Request) -> Actor:
        actor = actor_of(request)
        if not actor.can(Capability.POLICY_MANAGE):
            raise PermissionDenied("managing policies needs policy.manage", slug="missing-capability")
        return actor

    @extend_schema(tags=["Policies"], operation_id="policies_retrieve", parameters=[_TYPE_PARAM],
                   responses={200: PolicyOutput}, summary="A policy of an escalation type (policy.manage)",
                   examples=[OpenApiExample("Risk-based change policy", response_only=True, value=_POLICY_EXAMPLE)])
    def get(self, request: Request, policy_type: str) -> Response:
        actor = self._actor(request)
        _check_policy_type(policy_type)
        policy = Policy.objects.filter(tenant=actor.tenant, type=policy_type).first()
        if policy is None:
            raise NotFound(f"no policy for type {policy_type}", slug="not-found")
        return Response(policy_document(policy), headers={"ETag": policy_etag(policy)})

    @extend_schema(
        tags=["Policies"], operation_id="policies_update", request=PolicyInput,
        responses={200: PolicyOutput, 201: PolicyOutput},
        summary="Create or change a policy (policy.manage)",
        description="Fields not sent keep their value (a new policy needs `route`). Each change bumps `version`; "
                    "escalations already open keep the policy they were created under.\n\n"
                    "Round trip: the document GET returned is accepted back, changed or not. `type`, `version` and "
                    "`updated_at` are server-owned and ignored when they equal the current value; "
                    "`effective_approvals` is computed and always ignored. `version` in the body, or `If-Match` "
                    "with the ETag of GET, makes the write conditional: a stale one is 409 "
                    "(`problem+json`, type `.../stale-version`) and nothing is written.\n\n"
                    "A stage's `approvals_required` always wins; `null` takes `approvals_by_risk` for the "
                    "request's risk (1 where a level is empty); approvals_by_risk with no such stage is 400. "
                    "A stage's `when` is a routing condition (see the README, 'Routing conditions').",
        parameters=[_TYPE_PARAM, OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, required=False,
                                                  description='The ETag of GET, e.g. "v3": 409 when stale.')],
        examples=[OpenApiExample("Two approvals for high risk", request_only=True, value={
            "route": [["senior_manager"]], "approvals_by_risk": {"low": 0, "medium": 1, "high": 2},
            "expiry_seconds": 259200}),
            OpenApiExample("Changed", response_only=True, status_codes=["200"], value=_POLICY_EXAMPLE)],
    )
    def put(self, request: Request, policy_type: str) -> Response:
        actor = self._actor(request)
        _check_policy_type(policy_type)
        data = validated(PolicyInput, request)
        current = Policy.objects.filter(tenant=actor.tenant, type=policy_type).first()
        fields, expected = policy_fields_from_document(data, policy_type=policy_type, policy=current,
                                                       if_match=request.headers.get("If-Match"))
        policy = policy_upsert(tenant=actor.tenant, type=policy_type, fields=fields, actor=actor,
                               expected_version=expected)
        return Response(policy_document(policy), headers={"ETag": policy_etag(policy)},
                        status=status.HTTP_200_OK if current is not None else status.HTTP_201_CREATED)
