"""The approver dashboard: my queue, one case with everything needed to decide, deciding, a summary.

Views are thin: they read through escalations.selectors, write only through escalations.services
with an Actor of the current tenant, and turn DomainErrors into form errors with the error's status.
Every page works without JavaScript (plain forms, redirect after POST); with htmx the queue and the
badges refresh themselves and a decision swaps the case in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts.delegations import delegations_in_force
from accounts.roles import Capability
from accounts.totp import has_confirmed_device
from accounts.web import tenant_view
from approvals.services import approval_already_counted
from escalations import services
from escalations.attachments import SAFE_TYPES, LinkExpired, LinkRefused, attachment_check, attachment_token, attachments_of
from escalations.models import OPEN_STATUSES, Escalation, EscalationStatus
from escalations.selectors import (
    PENDING_BADGE_CAP,
    QueueFilters,
    escalation_for_page,
    escalation_history,
    escalation_queue,
    escalation_summary,
    escalation_visible,
    escalation_waiting_for,
    paginate_queue,
    pending_count,
    queue_branches,
    queue_types,
)
from escalations.standins import decider_capacity, held_for
from escalations.stepup import otp_challenge_send
from notifications.inbox import notification_mark_read, notifications_mark_all_read
from notifications.selectors import inbox, inbox_unread_count
from trustguard.errors import Conflict, DomainError, NotFound

from .case_extras import requester_context
from .forms import CODE_CHANNELS, DECISION_CHOICES, AcknowledgeForm, DecisionForm, SendCodeForm, apply_domain_errors, sentence
from .live import live_context
from .queue_cards import queue_cards


def is_htmx(request: HttpRequest) -> bool:
    """Did htmx send this (django-htmx's request.htmx), so a fragment is the answer rather than a page?"""
    return bool(getattr(request, "htmx", False))


def badge_context(request: HttpRequest) -> dict[str, Any]:
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    return {"pending_count": pending_count(actor=actor), "pending_cap": PENDING_BADGE_CAP,
            "unread_count": inbox_unread_count(user_id=actor.user.pk, tenant_id=actor.tenant.pk)}


# --- queue -------------------------------------------------------------------------------------------


@require_GET
@tenant_view
def queue(request: HttpRequest) -> HttpResponse:
    """My queue; with htmx (polling or "Load more") only the rows."""
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    # People who decide start with their own queue; those who only oversee (operators) with everything.
    filters = QueueFilters.from_query(request.GET, default_scope="mine" if actor.can(Capability.ESCALATION_VIEW) else "all")
    page = paginate_queue(escalation_queue(actor=actor, filters=filters), cursor=request.GET.get("cursor", ""),
                          branches=queue_branches(actor=actor, mine=filters.scope == "mine"))
    cards = queue_cards(page.items, locale=actor.tenant.locale, tenant=actor.tenant)
    held = held_for(actor, page.items)  # cases I hold as a delegate: the card says for whom
    for card, row in zip(cards, page.items, strict=True):
        holder = held.get(row["id"])
        card["held_for"] = (holder.get_full_name() or holder.username) if holder is not None else ""
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "page": page, "cards": cards, "filters": filters, "filter_query": query.urlencode(),
        "types": queue_types(actor=actor), "statuses": EscalationStatus.choices,
        "can_view_all": actor.can(Capability.ESCALATION_VIEW_ALL), "is_filtered": _is_filtered(filters),
        "appending": bool(request.GET.get("cursor")),
        "active_filters": sum(bool(x) for x in (filters.status, filters.type, filters.risk, filters.overdue,
                                                filters.scope == "all")),
        "my_roles": sorted(actor.roles),
        "badges_follow_queue": True,
        "poll_seconds": settings.QUEUE_POLL_SECONDS,
        **badge_context(request),
    }
    if is_htmx(request):
        return render(request, "dashboard/partials/queue_list.html", context)
    context["has_authenticator"] = has_confirmed_device(request.user)  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
    context.update(live_context(actor, filters.scope))
    return render(request, "dashboard/queue.html", context)


def _is_filtered(filters: QueueFilters) -> bool:
    return bool(filters.status or filters.type or filters.risk or filters.overdue or filters.q)


@require_GET
@tenant_view
def badges(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/partials/badges.html", badge_context(request))


# --- inbox -------------------------------------------------------------------------------------------

INBOX_PAGE = 50


@require_GET
@tenant_view
def inbox_page(request: HttpRequest) -> HttpResponse:
    """My in-app notifications in this tenant, newest first; unread ones stand out."""
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    items = [{"message": m, "body": m.readable_body(), "escalation": (m.data or {}).get("escalation")}
             for m in inbox(user_id=actor.user.pk, tenant_id=actor.tenant.pk)[:INBOX_PAGE]]
    return render(request, "dashboard/inbox.html", {"items": items, "page_size": INBOX_PAGE, **badge_context(request)})


@require_POST
@tenant_view
def inbox_open(request: HttpRequest, message_id: str) -> HttpResponse:
    """Mark one notification read and go to what it is about (the case, when it names one)."""
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    try:
        message = notification_mark_read(user_id=actor.user.pk, tenant_id=actor.tenant.pk, message_id=message_id)
    except NotFound:
        raise Http404("No such notification.") from None
    escalation_id = (message.data or {}).get("escalation")
    if escalation_id and escalation_visible(actor=actor, pk=escalation_id):
        return redirect("dashboard:detail", escalation_id)
    return redirect("dashboard:inbox")


@require_POST
@tenant_view
def inbox_read_all(request: HttpRequest) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    marked = notifications_mark_all_read(user_id=actor.user.pk, tenant_id=actor.tenant.pk)
    messages.success(request, ngettext("Marked %(count)d notification as read.", "Marked %(count)d notifications as read.",
                                       marked) % {"count": marked})
    return redirect("dashboard:inbox")


# --- one case ----------------------------------------------------------------------------------------


def _case_or_404(request: HttpRequest, pk: str) -> Escalation:
    escalation = escalation_for_page(actor=request.actor, pk=pk)  # type: ignore[attr-defined]  # set by tenant_view
    if escalation is None:
        # Another tenant's case, or one not assigned to my role: the same 404 (no existence leak).
        raise Http404("No such escalation.")
    return escalation


def _case_context(request: HttpRequest, escalation: Escalation, **extra: Any) -> dict[str, Any]:
    actor = request.actor  # type: ignore[attr-defined]  # set by tenant_view
    approval = escalation.approval
    stages = list(approval.stages.all())
    decisions = list(approval.decisions.all())
    current = next((s for s in stages if s.index == approval.current_stage), None)
    # In my own right, or standing in for someone away ("deciding on behalf of X"): the engine's answer.
    is_open = escalation.status in OPEN_STATUSES
    delegations = delegations_in_force(actor=actor) if is_open else []  # read once for the page (and its banner)
    capacity = (decider_capacity(actor=actor, escalation=escalation, stage_roles=current.eligible_roles,
                                 delegations=delegations) if current is not None and is_open else None)
    assigned_to_me = bool(current and capacity and (set(current.eligible_roles) & capacity.roles or capacity.named))
    on_behalf_of = capacity.on_behalf_of if capacity and assigned_to_me else None
    people = {request.user.pk, *(capacity.partners if capacity else ()), *([on_behalf_of.pk] if on_behalf_of else [])}
    i_approved = approval_already_counted(approval, people=people)
    user = request.user
    offered = {"email": actor.tenant.email_otp_allowed and bool(user.email),  # type: ignore[union-attr]  # tenant_view: signed in
               "sms": bool(user.phone_number)}  # type: ignore[union-attr]  # tenant_view: signed in
    channels = [(value, label) for value, label in CODE_CHANNELS if offered[value]]
    context = {
        "e": escalation, "stages": stages, "decisions": decisions, "current_stage": current,
        "history": escalation_history(escalation),
        "attachments": [(a, attachment_token(user=user, escalation=escalation, index=a.index))  # type: ignore[arg-type]  # tenant_view: signed in
                        for a in attachments_of(escalation)],
        "payload_items": [(k, v) for k, v in (escalation.payload or {}).items() if k != "attachments"]
        if isinstance(escalation.payload, dict) else [],
        # A person the stage names needs no role capability: the route asks them (escalations.standins.Capacity).
        "can_acknowledge": escalation.status == EscalationStatus.PENDING and assigned_to_me
        and (actor.can(Capability.ESCALATION_ACKNOWLEDGE) or bool(capacity and capacity.named)),
        "can_decide": is_open and assigned_to_me and (actor.can(Capability.ESCALATION_DECIDE)
                                                      or bool(capacity and capacity.named)) and not i_approved,
        "approvals_missing": max(escalation.approvals_required - escalation.approvals_received, 0),
        "waiting": escalation_waiting_for(escalation, delegations=delegations),
        "i_approved": i_approved, "assigned_to_me": assigned_to_me, "on_behalf_of": on_behalf_of,
        "can_export": actor.can(Capability.AUDIT_EXPORT),
        "decision_choices": DECISION_CHOICES, "challenge_channels": channels,
        "form": DecisionForm(), "now": timezone.now(),
    }
    context.update(extra)
    # A code that could not be sent is said where the code is typed, like a code that was refused.
    code_form = context.get("code_form")
    context["otp_errors"] = [*context["form"]["otp"].errors, *(code_form.errors.get("channel", []) if code_form else [])]
    context.update(requester_context(request, escalation, context))  # the requester's side, the conversation
    return context


@require_GET
@tenant_view
def detail(request: HttpRequest, pk: str) -> HttpResponse:
    escalation = _case_or_404(request, pk)
    return render(request, "dashboard/detail.html", {**_case_context(request, escalation), **badge_context(request)})


def _respond_case(request: HttpRequest, pk: str, *, status: int = 200, **extra: Any) -> HttpResponse:
    """After an action: the re-read case (htmx swaps it in place), or the whole page without htmx."""
    escalation = _case_or_404(request, pk)
    context = {**_case_context(request, escalation, **extra), **badge_context(request)}
    template = "dashboard/partials/case_htmx.html" if is_htmx(request) else "dashboard/detail.html"
    return render(request, template, context, status=status)


def case_action(request: HttpRequest, pk: str, form: forms.Form, act: Callable[[], str], *, name: str = "form",
                invalid: str = "", refuse: Callable[[DomainError], str] | None = None, anchor: str = "",
                level: int = messages.SUCCESS) -> HttpResponse:
    """Every action on a case page (the approver's and the requester's) has this one shape.

    The form refuses the input: 400, the case shown again with the form (and `invalid` at the top, when given).
    The service refuses (a DomainError): its status, the form saying why (`refuse(exc)`, by default each named
    field's message next to it), and what `refuse` returns at the top of the case. Done: `act()`'s sentence, on
    the case swapped in place (htmx) or after a redirect to it (at `anchor`).
    """
    if not form.is_valid():
        return _respond_case(request, pk, status=400, **{name: form}, **({"action_error": invalid} if invalid else {}))
    try:
        done = act()
    except DomainError as exc:
        top = refuse(exc) if refuse is not None else _refuse_on_form(form, exc)
        return _respond_case(request, pk, status=exc.status, **{name: form}, **({"action_error": top} if top else {}))
    return _after_success(request, pk, done, anchor=anchor, level=level)


def _refuse_on_form(form: forms.Form, exc: DomainError) -> str:
    apply_domain_errors(form, exc.errors, sentence(exc.detail))
    return sentence(exc.detail)


def _after_success(request: HttpRequest, pk: str, message: str, *, anchor: str = "",
                   level: int = messages.SUCCESS) -> HttpResponse:
    if is_htmx(request):
        return _respond_case(request, pk, notice=message)
    messages.add_message(request, level, message)
    return HttpResponseRedirect(reverse("dashboard:detail", args=[pk]) + anchor)


@require_POST
@tenant_view
def acknowledge(request: HttpRequest, pk: str) -> HttpResponse:
    escalation = _case_or_404(request, pk)

    def act() -> str:
        services.escalation_acknowledge(actor=request.actor, escalation=escalation)  # type: ignore[attr-defined]  # set by tenant_view
        return gettext("Acknowledged. Re-escalation of this level has stopped; decide before the expiry.")

    return case_action(request, pk, AcknowledgeForm(request.POST), act, name="ack_form",
                       refuse=lambda exc: exc.detail)


@require_POST
@tenant_view
def decide(request: HttpRequest, pk: str) -> HttpResponse:
    """Approve / approve with conditions / reject / defer, with a justification and a one-time code."""
    escalation = _case_or_404(request, pk)
    form = DecisionForm(request.POST)

    def act() -> str:
        if not form.read_at(escalation.revision):
            # Amended while this person was reading it: their decision was about the old content (README "Amendments").
            raise Conflict(gettext("The requester amended this while you were reading it. Read the changes below, "
                                   "then decide again."), slug="case-amended")
        services.escalation_decide(actor=request.actor, escalation=escalation,  # type: ignore[attr-defined]  # set by tenant_view
                                   **form.service_kwargs())
        return form.done()

    return case_action(request, pk, form, act, refuse=form.refuse)


@require_POST
@tenant_view
def send_code(request: HttpRequest, pk: str) -> HttpResponse:
    """Send a one-time code bound to me and this escalation, by email or SMS."""
    escalation = _case_or_404(request, pk)
    form = SendCodeForm(request.POST)

    def act() -> str:
        channel = form.cleaned_data["channel"]
        otp_challenge_send(actor=request.actor, escalation=escalation, channel=channel)  # type: ignore[attr-defined]  # set by tenant_view
        if channel == "sms":
            return gettext("A code is on its way by text message. It works for 5 minutes.")
        return gettext("A code is on its way by email. It works for 5 minutes.")

    return case_action(request, pk, form, act, name="code_form", refuse=form.refuse, anchor="#decide",
                       level=messages.INFO)


@require_GET
@tenant_view
def attachment(request: HttpRequest, pk: str, index: int) -> HttpResponse:
    """An attachment behind a five-minute link signed for this person (403 for others, 410 once expired)."""
    escalation = escalation_visible(actor=request.actor, pk=pk)  # type: ignore[attr-defined]  # set by tenant_view
    if escalation is None:
        raise Http404("No such escalation.")
    try:
        attachment_check(token=request.GET.get("t", ""), user=request.user, escalation=escalation, index=index)  # type: ignore[arg-type]  # signed in: a User, not AnonymousUser
    except LinkExpired:
        return render(request, "dashboard/link_refused.html", {"expired": True, "e": escalation}, status=410)
    except LinkRefused:
        return render(request, "dashboard/link_refused.html", {"expired": False, "e": escalation}, status=403)
    item = next((a for a in attachments_of(escalation) if a.index == index), None)
    if item is None:
        raise Http404("No such attachment.")
    if item.content is None:
        return redirect(item.url)
    response = HttpResponse(item.content, content_type=item.content_type if item.content_type in SAFE_TYPES
                            else "application/octet-stream")
    # Always a download, never rendered as a page of ours: a hostile "receipt" cannot run script here.
    safe_name = "".join(c for c in item.name if c.isalnum() or c in "._- ")[:100] or "attachment"
    response["Content-Disposition"] = f'attachment; filename="{safe_name}"'
    response["Cache-Control"] = "private, no-store"
    return response


# --- summary -----------------------------------------------------------------------------------------


@require_GET
@tenant_view
def summary(request: HttpRequest) -> HttpResponse:
    data = escalation_summary(actor=request.actor)  # type: ignore[attr-defined]  # set by tenant_view
    return render(request, "dashboard/summary.html", {"s": data, **badge_context(request)})
