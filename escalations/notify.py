"""Who hears about an escalation event, registered with notifications in EscalationsConfig.ready().

- The assigned role's members: on creation, re-escalation (escalation.escalated), reminders, the
  top-of-ladder overdue alert (escalation.sla_breached) and the end of a deferral (escalation.resumed).
- The requester: on every decision (approved, rejected, deferred), expiry and cancellation.
- The customer in `contact` ({email?, phone?}): on creation ("under review") and on the outcome.
- The source system hears everything through its webhooks (not here).
Channels follow the policy snapshot's notify_channels (in-app only when it names none).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from accounts.models import Tenant, User
from accounts.roles import Role
from accounts.selectors import role_members
from notifications.models import OutboxEvent
from notifications.registry import Recipient

from .models import Escalation

# reminder, sla_breached (overdue at the top of the ladder) and resumed (a deferral ran out) come from
# the deadline sweeps.
APPROVER_EVENTS = {"escalation.created", "escalation.escalated", "escalation.reminder", "escalation.sla_breached",
                   "escalation.resumed"}
REQUESTER_EVENTS = {"escalation.approved", "escalation.rejected", "escalation.deferred", "escalation.expired",
                    "escalation.cancelled"}
CUSTOMER_EVENTS = {"escalation.created", "escalation.approved", "escalation.rejected", "escalation.expired",
                   "escalation.cancelled"}
CUSTOMER_CHANNELS = ("email", "sms")


def _hours_between(start: datetime | None, end: datetime | None) -> int | None:
    if not start or not end:
        return None
    return max(1, math.ceil((end - start).total_seconds() / 3600))


NOTIFIED_EVENTS = APPROVER_EVENTS | REQUESTER_EVENTS | CUSTOMER_EVENTS
MembersOf = Callable[[Tenant, str], Sequence[User]]


def _escalation_id(event: OutboxEvent) -> uuid.UUID | None:
    try:
        return uuid.UUID(event.aggregate_id)
    except ValueError:
        return None


def _members_of(tenant: Tenant, role: str) -> list[User]:
    return list(role_members(tenant=tenant, role=role))


def escalation_recipients(event: OutboxEvent) -> list[Recipient]:
    escalation_id = _escalation_id(event)
    if event.type not in NOTIFIED_EVENTS or escalation_id is None:
        return []  # e.g. acknowledged, executed: the source system hears these through its webhooks only
    escalation = (Escalation.objects.select_related("tenant", "requested_by_user")
                  .filter(pk=escalation_id, tenant_id=event.tenant_id).first())
    if escalation is None:
        return []
    return _recipients(event, escalation, _members_of)


def escalation_recipients_many(events: Sequence[OutboxEvent]) -> dict[int, list[Recipient]]:
    """escalation_recipients for a relay batch: the cases in one query, each role's members once."""
    wanted = {event.pk: escalation_id for event in events
              if event.type in NOTIFIED_EVENTS and (escalation_id := _escalation_id(event)) is not None}
    escalations = {e.pk: e for e in Escalation.objects.select_related("tenant", "requested_by_user")
                   .filter(pk__in=set(wanted.values()))}
    members: dict[tuple[int, str], list[User]] = {}

    def members_of(tenant: Tenant, role: str) -> list[User]:
        if (tenant.pk, role) not in members:
            members[(tenant.pk, role)] = _members_of(tenant, role)
        return members[(tenant.pk, role)]

    out: dict[int, list[Recipient]] = {}
    for event in events:
        escalation_id = wanted.get(event.pk)
        escalation = escalations.get(escalation_id) if escalation_id is not None else None
        if escalation is not None and escalation.tenant_id == event.tenant_id:
            out[event.pk] = _recipients(event, escalation, members_of)
    return out


def _recipients(event: OutboxEvent, escalation: Escalation, members_of: MembersOf) -> list[Recipient]:
    data: dict[str, Any] = event.data or {}
    channels = tuple(escalation.policy_snapshot.get("notify_channels") or ("in_app",))
    status = data.get("status", escalation.status)
    role = data.get("assigned_role") or escalation.assigned_role
    expires_at = parse_datetime(data["expires_at"]) if data.get("expires_at") else escalation.expires_at
    staff_context = {
        "tenant_name": escalation.tenant.name, "escalation_id": str(escalation.pk), "type": escalation.type,
        "reason": escalation.reason, "status": status, "role": role,
        "role_label": Role(role).label if role in Role.values else role,
        "amount": data.get("amount"), "source": data.get("source") or {}, "decision": data.get("decision") or {},
        "escalation_level": data.get("escalation_level"), "expires_at": expires_at,
        "ack_due_at": parse_datetime(data["ack_due_at"]) if data.get("ack_due_at") else None,
        "defer_until": parse_datetime(data["defer_until"]) if data.get("defer_until") else None,
    }
    links = {"escalation": str(escalation.pk), "event": event.type}
    out: list[Recipient] = []

    if event.type in APPROVER_EVENTS and status in ("pending", "acknowledged") and role:
        for user in members_of(escalation.tenant, role):
            out.append(Recipient(audience="approver", channels=channels, user_id=user.pk, email=user.email,
                                 phone=user.phone_number, context=staff_context, data=links))

    if event.type in REQUESTER_EVENTS:
        requester = escalation.requested_by_user
        if requester is not None:
            out.append(Recipient(audience="requester", channels=channels, user_id=requester.pk, email=requester.email,
                                 phone=requester.phone_number, context=staff_context, data=links))
        elif escalation.requested_by_email and "email" in channels:
            out.append(Recipient(audience="requester", channels=("email",), email=escalation.requested_by_email,
                                 context=staff_context))

    contact = escalation.contact if isinstance(escalation.contact, dict) else {}
    tell_customer = (event.type in CUSTOMER_EVENTS and (contact.get("email") or contact.get("phone"))
                     and (event.type != "escalation.created" or status == "pending"))
    customer_channels = tuple(c for c in CUSTOMER_CHANNELS if c in channels)
    if tell_customer and customer_channels:
        # A third party: only what they need (their own reference and the wait), no internal detail.
        customer_context = {
            "tenant_name": escalation.tenant.name, "entity_type": escalation.source_entity_type,
            "entity_id": escalation.source_entity_id, "status": status,
            "answer_within_hours": _hours_between(event.occurred_at, expires_at),
        }
        out.append(Recipient(audience="customer", channels=customer_channels,
                             email=str(contact.get("email") or ""), phone=str(contact.get("phone") or ""),
                             context=customer_context))
    return out
