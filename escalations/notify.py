"""Who hears about an escalation event, registered with notifications in EscalationsConfig.ready().

- The current stage's role members: when a stage opens (creation; escalation.approval_recorded that completed
  a stage and opened the next), on re-escalation (escalation.escalated), reminders, the top-of-ladder overdue
  alert (escalation.sla_breached) and the end of a deferral (escalation.resumed). Their inbox items ask for
  a decision (data.action) and are marked done when the case closes (approved, rejected, expired, cancelled).
- The requester: on every decision (approved, rejected, deferred), expiry and cancellation.
- The customer in `contact` ({email?, phone?}): on creation ("under review") and on the outcome.
- The source system hears everything through its webhooks (not here).
Channels follow the policy snapshot's notify_channels (in-app only when it names none).
Messages read as a person would: money formatted in the tenant's locale, names and role labels rather than
usernames, and an absolute link to the case page (TRUSTGUARD_SITE_URL); a requester outside the tenant, who has no
account, gets the link to their case's signed status page instead (where they also answer questions), and reads
the tenant's people by role only.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db.models import F
from django.utils.dateparse import parse_datetime

from accounts.delegations import delegations_active
from accounts.models import Delegation, Tenant, User
from accounts.selectors import language_and_zone, members_named, role_members
from approvals.models import Decision
from notifications.models import OutboxEvent
from notifications.outbox import catalogue
from notifications.registry import Recipient
from privacy.vault import SEALED_REQUESTER, FieldUnreadable, mask, open_contact, requested_by_of
from trustguard.links import case_url, requester_status_url
from trustguard.money import format_money

from .comments import emailed_requester
from .models import Escalation, Term
from .named import stage_names
from .requester_status import asker_role
from .standins import who_must_act
from .terminology import lazy_label

# reminder, sla_breached (overdue at the top of the ladder) and resumed (a deferral ran out) come from
# the deadline sweeps.
APPROVER_EVENTS = {catalogue.ESCALATION_CREATED.type, catalogue.ESCALATION_ESCALATED.type, catalogue.ESCALATION_REMINDER.type,
                   catalogue.ESCALATION_SLA_BREACHED.type, catalogue.ESCALATION_RESUMED.type,
                   catalogue.ESCALATION_AMENDED.type}  # an amendment restarts the route: its first stage is asked again
COMMENTED = catalogue.ESCALATION_COMMENTED.type
AMENDED = catalogue.ESCALATION_AMENDED.type
# A decision that completed a stage and opened the next one: the next stage's approvers are asked.
STAGE_OPENED = catalogue.ESCALATION_APPROVAL_RECORDED.type
REQUESTER_EVENTS = {catalogue.ESCALATION_APPROVED.type, catalogue.ESCALATION_REJECTED.type, catalogue.ESCALATION_DEFERRED.type,
                    catalogue.ESCALATION_EXPIRED.type, catalogue.ESCALATION_CANCELLED.type,
                    catalogue.ESCALATION_CONDITION_OVERDUE.type}
# Change management (escalations.schedule, escalations.obligations): the people who approved hear that their
# approval lapsed unexecuted, or that a condition they set is overdue; an overdue condition's owner hears too.
APPROVERS_FOLLOW_UP = {catalogue.ESCALATION_EXPIRED.type, catalogue.ESCALATION_CONDITION_OVERDUE.type}
CUSTOMER_EVENTS = {catalogue.ESCALATION_CREATED.type, catalogue.ESCALATION_APPROVED.type, catalogue.ESCALATION_REJECTED.type,
                   catalogue.ESCALATION_EXPIRED.type, catalogue.ESCALATION_CANCELLED.type}
CLOSING_EVENTS = {catalogue.ESCALATION_APPROVED.type, catalogue.ESCALATION_REJECTED.type, catalogue.ESCALATION_EXPIRED.type,
                  catalogue.ESCALATION_CANCELLED.type}
CUSTOMER_CHANNELS = ("email", "sms")
# The customer's outcome wording when the tenant sets none (Tenant.customer_*_text).
DEFAULT_CUSTOMER_OUTCOME = {
    catalogue.ESCALATION_APPROVED.type: "Your {entity_type} {entity_id} has been approved.",
    catalogue.ESCALATION_REJECTED.type: "Your {entity_type} {entity_id} has been rejected.",
}


def _hours_between(start: datetime | None, end: datetime | None) -> int | None:
    if not start or not end:
        return None
    return max(1, math.ceil((end - start).total_seconds() / 3600))


NOTIFIED_EVENTS = (APPROVER_EVENTS | REQUESTER_EVENTS | CUSTOMER_EVENTS | {STAGE_OPENED, COMMENTED}
                   | APPROVERS_FOLLOW_UP)
MembersOf = Callable[[Tenant, str], Sequence[User]]
DeciderOf = Callable[[str], User | None]
DelegationsOf = Callable[[Tenant], list[Delegation]]


def asks_approvers(event: OutboxEvent) -> bool:
    """Does this event put the case before (new) approvers? Stage openings and the chasing events."""
    data = event.data or {}
    return event.type in APPROVER_EVENTS or (event.type == STAGE_OPENED and bool(data.get("stage_completed")))


def escalation_closes(event: OutboxEvent) -> bool:
    """The case is closed: nobody needs to decide it any more (notifications marks the inbox items done)."""
    return event.type in CLOSING_EVENTS


def _wanted(event: OutboxEvent) -> bool:
    return event.type in NOTIFIED_EVENTS and (event.type != STAGE_OPENED or asks_approvers(event))


def _escalation_id(event: OutboxEvent) -> uuid.UUID | None:
    try:
        return uuid.UUID(event.aggregate_id)
    except ValueError:
        return None


def _members_of(tenant: Tenant, role: str) -> list[User]:
    return list(role_members(tenant=tenant, role=role))


def _decision_id(event: OutboxEvent) -> str | None:
    decision = (event.data or {}).get("decision")
    return str(decision["id"]) if isinstance(decision, dict) and decision.get("id") else None


def _deciders(decision_ids: Iterable[str]) -> dict[str, User]:
    ids = [i for i in decision_ids if _is_uuid(i)]
    if not ids:
        return {}
    return {str(d.pk): d.decided_by for d in Decision.objects.filter(pk__in=ids).select_related("decided_by")}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


_SELECT = ("tenant", "requested_by_user", "requested_by_api_key")


def escalation_recipients(event: OutboxEvent) -> list[Recipient]:
    escalation_id = _escalation_id(event)
    if not _wanted(event) or escalation_id is None:
        return []  # e.g. acknowledged, executed: the source system hears these through its webhooks only
    escalation = (Escalation.objects.select_related(*_SELECT)
                  .filter(pk=escalation_id, tenant_id=event.tenant_id).first())
    if escalation is None:
        return []
    decision_id = _decision_id(event)
    deciders = _deciders([decision_id] if decision_id else [])
    return _recipients(event, escalation, _members_of, deciders.get)


def escalation_recipients_many(events: Sequence[OutboxEvent]) -> dict[int, list[Recipient]]:
    """escalation_recipients for a relay batch: the cases in one query, each role's members once, the deciders
    in one query."""
    wanted = {event.pk: escalation_id for event in events
              if _wanted(event) and (escalation_id := _escalation_id(event)) is not None}
    escalations = {e.pk: e for e in Escalation.objects.select_related(*_SELECT)
                   .filter(pk__in=set(wanted.values()))}
    deciders = _deciders({d for event in events if event.pk in wanted and (d := _decision_id(event))})
    members: dict[tuple[int, str], list[User]] = {}
    away: dict[int, list[Delegation]] = {}

    def members_of(tenant: Tenant, role: str) -> list[User]:
        if (tenant.pk, role) not in members:
            members[(tenant.pk, role)] = _members_of(tenant, role)
        return members[(tenant.pk, role)]

    def delegations_of(tenant: Tenant) -> list[Delegation]:
        if tenant.pk not in away:
            away[tenant.pk] = delegations_active(tenant=tenant)
        return away[tenant.pk]

    out: dict[int, list[Recipient]] = {}
    for event in events:
        escalation_id = wanted.get(event.pk)
        escalation = escalations.get(escalation_id) if escalation_id is not None else None
        if escalation is not None and escalation.tenant_id == event.tenant_id:
            out[event.pk] = _recipients(event, escalation, members_of, deciders.get, delegations_of)
    return out


def person_name(user: User | None) -> str:
    """How a person is named to others: their full name, else their username."""
    if user is None:
        return ""
    return user.get_full_name().strip() or user.get_username()


def requester_name(escalation: Escalation) -> str:
    """Who asked: the person, else the email the source system gave, else the source system (its key's name)."""
    if escalation.requested_by_user is not None:
        return person_name(escalation.requested_by_user)
    if escalation.requested_by_email == SEALED_REQUESTER:
        # Someone outside the tenant: masked in every message and report (messages are stored); privacy.manage
        # reveals it on the case page.
        return mask(requested_by_of(escalation), kind="email") or "a requester whose data was erased"
    if escalation.requested_by_email:
        return escalation.requested_by_email
    key = escalation.requested_by_api_key
    return f"{escalation.source_system} ({key.name})" if key is not None else escalation.source_system


def _customer_outcome(escalation: Escalation, event_type: str) -> str:
    """The tenant's wording for an approved or rejected outcome ({entity_type}, {entity_id} filled in)."""
    tenant = escalation.tenant
    custom = {catalogue.ESCALATION_APPROVED.type: tenant.customer_approved_text,
              catalogue.ESCALATION_REJECTED.type: tenant.customer_rejected_text}.get(event_type, "")
    wording = custom.strip() or DEFAULT_CUSTOMER_OUTCOME.get(event_type, "")
    # Plain replacement, not str.format: the tenant's text may hold braces of its own.
    return (wording.replace("{entity_type}", escalation.source_entity_type)
            .replace("{entity_id}", escalation.source_entity_id))


def _recipients(event: OutboxEvent, escalation: Escalation, members_of: MembersOf,
                decider_of: DeciderOf, delegations_of: DelegationsOf | None = None) -> list[Recipient]:
    data: dict[str, Any] = event.data or {}
    tenant = escalation.tenant
    channels = tuple(escalation.policy_snapshot.get("notify_channels") or ("in_app",))
    status = data.get("status", escalation.status)
    role = data.get("assigned_role") or escalation.assigned_role
    expires_at = parse_datetime(data["expires_at"]) if data.get("expires_at") else escalation.expires_at
    amount = data.get("amount") or {}
    money = format_money(amount["value_minor"], amount["currency"], tenant.locale) if amount.get("currency") else ""
    source = data.get("source") or {}
    decision = dict(data.get("decision") or {})
    if decision:
        decided_by = decider_of(str(decision.get("id", "")))
        decision["decided_by_name"] = person_name(decided_by) or decision.get("decided_by", "")
        decision["role_label"] = lazy_label(Term.Kind.ROLE, decision.get("role", ""), tenant=tenant.pk)
        decision["stage_number"] = int(decision.get("stage") or 0) + 1
    entity = " ".join(x for x in (source.get("entity_type"), source.get("entity_id")) if x)
    staff_context = {
        "tenant_name": tenant.name, "escalation_id": str(escalation.pk), "type": escalation.type,
        "title": escalation.policy_snapshot.get("name") or escalation.type,
        # The tenant's words (escalations.terminology), printed in each recipient's language.
        "reason": lazy_label(Term.Kind.REASON, escalation.reason, tenant=tenant.pk),
        "type_label": lazy_label(Term.Kind.ESCALATION_TYPE, escalation.type, tenant=tenant.pk),
        "status": status, "status_label": lazy_label(Term.Kind.STATUS, status, tenant=tenant.pk),
        "role": role, "role_label": lazy_label(Term.Kind.ROLE, role, tenant=tenant.pk),
        "amount": amount or None, "money": money, "entity": entity,
        # "₦2,500,000.00 order ORD-1001": what is asked about, in a few words.
        "what": " ".join(x for x in (money, entity) if x) or escalation.type,
        "source": source, "decision": decision,
        "requester_name": requester_name(escalation), "url": case_url(escalation.pk),
        "requested_through": source.get("system") or "",
        "stage_number": int(data.get("current_stage") or 0) + 1,
        "stage_opened": event.type == STAGE_OPENED,
        "escalation_level": data.get("escalation_level"), "expires_at": expires_at,
        "ack_due_at": parse_datetime(data["ack_due_at"]) if data.get("ack_due_at") else None,
        "defer_until": parse_datetime(data["defer_until"]) if data.get("defer_until") else None,
        "cancel_reason": data.get("reason") if event.type == catalogue.ESCALATION_CANCELLED.type else "",
        "expiry_reason": data.get("expiry_reason") or "",
        "approval_expires_at": (parse_datetime(data["approval_expires_at"]) if data.get("approval_expires_at")
                                else None),
        # The conditions' deadlines as times, so each reader sees them in their own zone and words.
        "overdue_conditions": [{**c, "due_at": parse_datetime(c["due_at"]) if c.get("due_at") else None}
                               for c in data.get("overdue") or []],
    }
    links = {"escalation": str(escalation.pk), "event": event.type, "url": staff_context["url"]}
    # A critical case reaches people in their quiet hours (when they let critical ones through: notifications.preferences).
    critical = (data.get("urgency") or escalation.urgency) == "critical"
    out: list[Recipient] = []
    if event.type == COMMENTED:
        return _comment_recipients(data, escalation, channels, staff_context, links)
    amendment = data.get("amendment") or {}
    # Who had approved the old content is told their approval was dismissed (once: not asked again as a member).
    dismissed_ids = {int(d["user_id"]) for d in amendment.get("dismissed_approvals", ()) if d.get("user_id")}
    if event.type == AMENDED:
        staff_context = {**staff_context, "amended_fields": ", ".join(amendment.get("fields", ())),
                         "amend_justification": amendment.get("justification", "")}
        for user in User.objects.filter(pk__in=dismissed_ids, is_active=True).order_by("pk"):
            out.append(Recipient(audience="approver", channels=channels, user_id=user.pk, email=user.email,
                                 phone=user.phone_number, context={**staff_context, "approval_dismissed": True},
                                 data={**links, "action": "decide"}, **language_and_zone(tenant=tenant, user=user)))

    if asks_approvers(event) and status in ("pending", "acknowledged") and (role or stage_names(escalation)):
        asks = {**links, "action": "decide"}
        # Who must act (standins.who_must_act): the role's members and the people the stage names who are not away,
        # and the delegates of those who are, told whose place they take.
        delegations = delegations_of(tenant) if delegations_of is not None else None
        for approver in who_must_act(escalation, role=role, members_of=members_of, delegations=delegations):
            user = approver.user
            if user.pk in dismissed_ids:
                continue
            context = ({**staff_context, "on_behalf_of_name": person_name(approver.on_behalf_of)}
                       if approver.on_behalf_of is not None else staff_context)
            out.append(Recipient(audience="approver", channels=channels, user_id=user.pk, email=user.email,
                                 phone=user.phone_number, context=context, data=asks, critical=critical,
                                 **language_and_zone(tenant=tenant, user=user)))

    if event.type in REQUESTER_EVENTS:
        requester = escalation.requested_by_user
        if requester is not None:
            out.append(Recipient(audience="requester", channels=channels, user_id=requester.pk, email=requester.email,
                                 phone=requester.phone_number, context=staff_context, data=links, critical=critical,
                                 **language_and_zone(tenant=tenant, user=requester)))
        elif (email := requested_by_of(escalation)) and "email" in channels:
            out.append(Recipient(audience="requester", channels=("email",), email=email,
                                 context=_emailed_requester_context(escalation, email, staff_context),
                                 **language_and_zone(tenant=tenant)))

    if _follows_up(event, data):
        for user in _follow_up_people(escalation, data):
            out.append(Recipient(audience="approver", channels=channels, user_id=user.pk, email=user.email,
                                 phone=user.phone_number, context=staff_context, data=links,
                                 **language_and_zone(tenant=tenant, user=user)))

    try:  # sealed at rest (privacy.vault); an erased or unreadable contact is told nothing
        contact = open_contact(escalation.contact)
    except FieldUnreadable:
        contact = {}
    tell_customer = (event.type in CUSTOMER_EVENTS and (contact.get("email") or contact.get("phone"))
                     and (event.type != catalogue.ESCALATION_CREATED.type or status == "pending"))
    customer_channels = tuple(c for c in CUSTOMER_CHANNELS if c in channels)
    if tell_customer and customer_channels:
        # A third party: only what they need (their own reference, the wait, the outcome), no internal detail.
        customer_context = {
            "tenant_name": tenant.name, "entity_type": escalation.source_entity_type,
            "entity_id": escalation.source_entity_id, "status": status,
            "outcome": _customer_outcome(escalation, event.type),
            "answer_within_hours": _hours_between(event.occurred_at, expires_at),
        }
        out.append(Recipient(audience="customer", channels=customer_channels,
                             email=str(contact.get("email") or ""), phone=str(contact.get("phone") or ""),
                             context=customer_context, **language_and_zone(tenant=tenant)))
    return out


def _emailed_requester_context(escalation: Escalation, email: str, context: dict[str, Any]) -> dict[str, Any]:
    """Someone outside the tenant has no account, so the case page would only ask them to sign in: their link is
    the signed status page made for their email (trustguard.links.requester_status_url). They read the tenant's
    people by role, never by name or username (as on that page): the decider's role, the asker's role."""
    if not emailed_requester(escalation):
        return context  # a member named by email: the case page opens after they sign in
    decision = {**context["decision"], "decided_by_name": "", "decided_by": ""} if context.get("decision") else {}
    asker = ""
    if context.get("comment_kind") == "question":
        asked_by = members_named(tenant=escalation.tenant, usernames=[str(context.get("comment_author", ""))])
        asker = asker_role(escalation, asked_by[0] if asked_by else None)
    return {**context, "url": requester_status_url(escalation.pk, email), "status_page": True, "decision": decision,
            "comment_author": "", "asker_role": lazy_label(Term.Kind.ROLE, asker, tenant=escalation.tenant_id) if asker
            else ""}


def _follows_up(event: OutboxEvent, data: dict[str, Any]) -> bool:
    if event.type == catalogue.ESCALATION_EXPIRED.type:
        return data.get("expiry_reason") == "approval_lapsed"
    return event.type in APPROVERS_FOLLOW_UP


def _follow_up_people(escalation: Escalation, data: dict[str, Any]) -> list[User]:
    """Who approved the case, and (an overdue condition) each overdue condition's owner, when a member."""
    # Approvals that still count: one dismissed by an amendment (an earlier round) no longer binds its giver.
    people = {d.decided_by_id: d.decided_by for d in Decision.objects.filter(
        request_id=escalation.approval_id, decision=Decision.Kind.APPROVE, round=F("request__round"))
        .select_related("decided_by")}
    owners = {str(c.get("owner")) for c in data.get("overdue") or [] if c.get("owner")}
    if owners:
        for user in User.objects.filter(username__in=owners, memberships__tenant_id=escalation.tenant_id):
            people.setdefault(user.pk, user)
    requester = escalation.requested_by_user_id
    return [u for pk, u in people.items() if pk != requester]  # the requester is told as the requester


def _comment_recipients(data: dict[str, Any], escalation: Escalation, channels: tuple[str, ...],
                        context: dict[str, Any], links: dict[str, str]) -> list[Recipient]:
    """escalation.commented: the people named (@username); on a question, the requester; on the requester's
    answer, whoever asked. Never the author. The body is not in the message (personal data): the link opens it."""
    comment = data.get("comment") or {}
    author = str(comment.get("author", ""))
    # The answer of a requester known only by email, through their status link (the source's key answers as
    # "api_key:..."): named as everywhere else, masked.
    through_link = bool(comment.get("by_requester")) and emailed_requester(escalation) and not author.startswith("api_key:")
    context = {**context, "comment_author": context["requester_name"] if through_link else author,
               "comment_kind": comment.get("kind", ""), "comment_by_requester": bool(comment.get("by_requester"))}
    told: dict[int, Recipient] = {}
    wanted = {int(uid) for uid in comment.get("mentions") or () if str(uid).isdigit()}
    if comment.get("by_requester"):
        from .models import Comment

        asker = (Comment.objects.filter(escalation=escalation, kind=Comment.Kind.QUESTION, author_user__isnull=False)
                 .order_by("-created_at", "-id").values_list("author_user_id", flat=True).first())
        if asker is not None:
            wanted.add(asker)
    for user in User.objects.filter(pk__in=wanted, is_active=True).order_by("pk"):
        if user.username != author:
            told[user.pk] = Recipient(audience="approver", channels=channels, user_id=user.pk, email=user.email,
                                      phone=user.phone_number, context=context, data=links,
                                      **language_and_zone(tenant=escalation.tenant, user=user))
    if comment.get("kind") == "question":
        requester = escalation.requested_by_user
        if requester is not None:
            told[requester.pk] = Recipient(audience="requester", channels=channels, user_id=requester.pk,
                                           email=requester.email, phone=requester.phone_number, context=context,
                                           data={**links, "action": "answer"},
                                           **language_and_zone(tenant=escalation.tenant, user=requester))
        elif (email := requested_by_of(escalation)) and "email" in channels:
            return [*told.values(), Recipient(audience="requester", channels=("email",), email=email,
                                              context=_emailed_requester_context(escalation, email, context),
                                              **language_and_zone(tenant=escalation.tenant))]
    return list(told.values())
