"""What the escalation endpoints share: the actor, input validation, the escalation response, examples."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.actors import Actor

from .. import selectors
from ..intake import ExecutionWindow
from ..models import Escalation
from ..serializers import (
    escalation_dict,
)
from ..services import (
    Money,
)

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
        Escalation.objects.actionable_by(actor).filter(pk=escalation_id)).get()
    return Response(escalation_dict(escalation), status=code)


def _money(data: dict[str, Any] | None) -> Money | None:
    return Money(value_minor=data["value_minor"], currency=data["currency"]) if data else None


def _window(data: dict[str, Any] | None) -> ExecutionWindow | None:
    return ExecutionWindow(starts_at=data["starts_at"], ends_at=data["ends_at"]) if data else None
