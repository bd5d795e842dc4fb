"""The out-of-office API (CONTRACT.md section 5, "Delegation and out of office"): POST/GET /delegations,
GET/DELETE /delegations/{id}.

Thin views over accounts.delegations (the rules) with the tenant's escalation types (the policies, known
here) for validation. A person's token acts for themselves; delegation.manage_others (operators) may name
a `delegator`.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actors import Actor
from accounts.delegations import (
    DelegationInput,
    delegation_create,
    delegation_for_change,
    delegation_revoke,
    delegations_of,
)
from accounts.models import Delegation, User
from accounts.roles import Capability
from trustguard.api.serializers import StrictSerializer
from trustguard.errors import NotFound, PermissionDenied, ValidationFailed

from .models import Policy
from .serializers import iso

TAG = "Delegation and out of office"
LIST_LIMIT = 200


class DelegationCreateInput(StrictSerializer):
    delegate = serializers.CharField(allow_null=True, max_length=150, help_text=(
        "Username of the person who decides for you meanwhile (an active decider of this tenant), or null: away "
        "with nobody standing in."))
    starts_at = serializers.DateTimeField(help_text=(
        "On the minute (seconds are dropped); without an offset, in the tenant's time zone. A start in the past "
        "means now."))
    ends_at = serializers.DateTimeField(help_text="After starts_at, at most 90 days later.")
    escalation_types = serializers.ListField(child=serializers.CharField(max_length=64), required=False,
                                             max_length=50, help_text="Only these types (default: every type).")
    delegator = serializers.CharField(required=False, max_length=150, help_text=(
        "Someone else's username: needs delegation.manage_others (operators). Default: yourself."))


class DelegationOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    delegator = serializers.CharField()
    delegate = serializers.CharField(allow_null=True)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    escalation_types = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=Delegation.Status.choices)
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class DelegationListOutput(serializers.Serializer[Any]):
    results = DelegationOutput(many=True)


def delegation_dict(delegation: Delegation) -> dict[str, Any]:
    return {"id": str(delegation.pk), "delegator": delegation.delegator.username,
            "delegate": delegation.delegate.username if delegation.delegate else None,
            "starts_at": iso(delegation.starts_at), "ends_at": iso(delegation.ends_at),
            "escalation_types": list(delegation.escalation_types), "status": delegation.status_at(timezone.now()),
            "created_by": delegation.created_by.username if delegation.created_by else None,
            "created_at": iso(delegation.created_at), "revoked_at": iso(delegation.revoked_at)}


def tenant_types(actor: Actor) -> frozenset[str]:
    """The escalation types of the tenant (its policies): what a delegation may be limited to."""
    return frozenset(Policy.objects.filter(tenant=actor.tenant).values_list("type", flat=True))


def _person(actor: Actor, username: str, field: str) -> User:
    """A person of the actor's tenant by username; 400 naming `field` otherwise (no hint whether they exist)."""
    user = User.objects.filter(username=username, memberships__tenant=actor.tenant).distinct().first()
    if user is None:
        raise ValidationFailed(f"{field}: not a person of this tenant", errors={field: ["Not a person of this tenant."]})
    return user


def _person_actor(request: Request) -> Actor:
    actor = request.user
    assert isinstance(actor, Actor)
    if actor.user is None:
        raise PermissionDenied("out-of-office belongs to a person: use a personal token", slug="person-required")
    return actor


_EXAMPLE: dict[str, Any] = {"id": "5f1c3c4e-9a0b-4b7e-8f44-0f8a4d4bb001", "delegator": "ceo", "delegate": "sm",
            "starts_at": "2026-12-24T08:00:00Z", "ends_at": "2026-12-31T17:00:00Z", "escalation_types": [],
            "status": "scheduled", "created_by": "ceo", "created_at": "2026-12-05T10:00:00Z", "revoked_at": None}


class DelegationCollectionView(APIView):
    @extend_schema(tags=[TAG], operation_id="delegations_list", responses={200: DelegationListOutput},
                   summary="My out-of-office periods (as delegator or delegate)",
                   description="Newest first, at most 200. An operator (delegation.manage_others) also sees those "
                               "they set for others.")
    def get(self, request: Request) -> Response:
        actor = _person_actor(request)
        rows = delegations_of(actor=actor).select_related("created_by")[:LIST_LIMIT]
        return Response({"results": [delegation_dict(d) for d in rows]})

    @extend_schema(
        tags=[TAG], operation_id="delegations_create", request=DelegationCreateInput,
        responses={201: DelegationOutput}, summary="Set an out-of-office period, with a delegate or nobody",
        description=(
            "While it is in force the delegate is asked instead of you (notifications, their queue, \"what is still "
            "needed\") and decides on your behalf with their own one-time code; the decision carries `on_behalf_of`. "
            "You and your delegate count as one approver. A delegate never decides what they or you requested, and "
            "authority received by delegation is never passed on (not transitive). A ladder level whose every "
            "member is away with nobody standing in is skipped (audited). "
            "Errors: overlapping periods of one delegator 409 (`delegation-overlap`); yourself as delegate, a "
            "delegate outside the tenant or who does not decide, end before start or in the past, more than 90 "
            "days, types the tenant does not have: 400 naming the field."),
        examples=[OpenApiExample("A week away, a deputy standing in", request_only=True, value={
            "delegate": "sm", "starts_at": "2026-12-24T09:00", "ends_at": "2026-12-31T18:00"}),
            OpenApiExample("Created", response_only=True, status_codes=["201"], value=_EXAMPLE)])
    def post(self, request: Request) -> Response:
        actor = _person_actor(request)
        serializer = DelegationCreateInput(data=request.data if request.data is not None else {})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        assert actor.user is not None
        delegator = actor.user
        if data.get("delegator") and data["delegator"] != actor.user.username:
            if not actor.can(Capability.DELEGATION_MANAGE_OTHERS):
                raise PermissionDenied("setting someone else's out-of-office needs delegation.manage_others",
                                       slug="missing-capability")
            delegator = _person(actor, data["delegator"], "delegator")
        delegate = _person(actor, data["delegate"], "delegate") if data["delegate"] is not None else None
        delegation = delegation_create(
            actor=actor, delegator=delegator, known_types=tenant_types(actor),
            wanted=DelegationInput(delegate=delegate, starts_at=data["starts_at"], ends_at=data["ends_at"],
                                   escalation_types=data.get("escalation_types") or ()))
        return Response(delegation_dict(delegation), status=status.HTTP_201_CREATED)


class DelegationDetailView(APIView):
    @extend_schema(tags=[TAG], operation_id="delegations_get", responses={200: DelegationOutput},
                   summary="One of my out-of-office periods (as delegator or delegate)")
    def get(self, request: Request, delegation_id: str) -> Response:
        actor = _person_actor(request)
        try:
            pk = uuid.UUID(delegation_id)
        except ValueError:
            raise NotFound("no such delegation", slug="not-found") from None
        found = delegations_of(actor=actor).select_related("created_by").filter(pk=pk).first()
        if found is None:
            raise NotFound("no such delegation", slug="not-found")
        return Response(delegation_dict(found))

    @extend_schema(tags=[TAG], operation_id="delegations_end", request=None, responses={200: DelegationOutput},
                   summary="End (revoke) an out-of-office period now",
                   description="The delegator's own (an operator: any of the tenant's); someone else's: 404. "
                               "Already ended or revoked: 409.")
    def delete(self, request: Request, delegation_id: str) -> Response:
        actor = _person_actor(request)
        delegation = delegation_revoke(actor=actor, delegation_id=delegation_id)
        delegation = delegation_for_change(actor=actor, delegation_id=delegation.pk)
        return Response(delegation_dict(delegation))
