"""GET and PUT of one policy document (ETag / If-Match)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actors import Actor
from accounts.roles import Capability
from trustguard.errors import NotFound, PermissionDenied, ValidationFailed

from ..models import Policy
from ..policies import policy_upsert
from ..policy_documents import policy_document, policy_etag, policy_fields_from_document
from ..serializers import (
    TYPE_PATTERN,
    PolicyInput,
    PolicyOutput,
)
from .common import actor_of, validated


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
