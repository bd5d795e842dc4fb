"""Actions on one escalation (acknowledge, decide, cancel, record execution) and the OTP challenge."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trustguard.errors import PermissionDenied

from .. import selectors
from ..serializers import (
    CancelInput,
    DecisionInput,
    EmptyInput,
    EscalationOutput,
    ExecutionInput,
    OtpChallengeInput,
    OtpChallengeOutput,
    escalation_dict,
    iso,
)
from ..services import (
    escalation_acknowledge,
    escalation_cancel,
    escalation_decide,
    escalation_record_execution,
)
from ..stepup import otp_challenge_send
from .common import _ESCALATION_EXAMPLE, TAG_ESC, _money, actor_of, escalation_response, validated


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
