"""A case's conversation: comments, questions to the requester and their answers.

1. Who may post: anyone who may see the case, and its requester (the same person or the same API key).
2. A comment is immutable; an edit is a new comment that `replaces` the author's own earlier one (shown as
   edited). The body is personal data: sealed at rest (privacy.vault.seal_note), never in logs, audit rows or
   events (those name the comment, not its words).
3. `@username` names people of the tenant: they are told (escalations.notify).
4. An approver may ask the requester (kind "question"): the requester is told (in-app/email, and the source
   system through the `escalation.commented` webhook) and the case shows "awaiting requester" until the
   requester writes again (awaiting_requester).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext

from accounts.actors import Actor
from accounts.roles import Capability
from accounts.selectors import members_named
from audit.actions import AuditAction
from notifications.outbox import catalogue as events
from privacy.vault import SEALED_REQUESTER, Subjects, mask, open_note, record_link, requested_by_of, same_person_email, seal_note
from trustguard.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

from .changes import record_change
from .models import OPEN_STATUSES, Comment, Escalation

MAX_COMMENT_LENGTH = 5000
BODY_FIELD = "comment.body"
_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9_.+-]{1,150})")


def mentioned_usernames(body: str) -> list[str]:
    return [name.rstrip(".") for name in _MENTION.findall(body)]


def is_case_requester(actor: Actor, escalation: Escalation) -> bool:
    """The requester: the same person or key (services.is_requester), or the person a source named by email."""
    from .services import is_requester

    if is_requester(actor, escalation):
        return True
    return actor.user is not None and same_person_email(escalation.requested_by_email, actor.user.email or "")


def emailed_requester(escalation: Escalation) -> bool:
    """Is the requester someone outside the tenant, known only by the email a source system gave (no account, so
    no case page: they get the status link)?"""
    return escalation.requested_by_user_id is None and escalation.requested_by_email == SEALED_REQUESTER


def case_for_conversation(actor: Actor, escalation_id: object) -> Escalation:
    """The case whose conversation `actor` may read (GET .../comments): 404 as for any case outside one's sight."""
    try:
        escalation = Escalation.objects.actionable_by(actor).select_related("tenant").get(pk=uuid.UUID(str(escalation_id)))
    except (ValueError, Escalation.DoesNotExist):
        raise NotFound("no such escalation", slug="not-found") from None
    if not (is_case_requester(actor, escalation)
            or Escalation.objects.visible_to(actor).filter(pk=escalation.pk).exists()):
        raise NotFound("no such escalation", slug="not-found")
    return escalation


def _lock_for_comment(actor: Actor, escalation_id: object) -> Escalation:
    """The case, locked (comments and their "awaiting requester" flag change one at a time), if the actor may
    see it or asked for it; 404 otherwise, as for every case outside one's sight."""
    from .services import lock_escalation

    escalation = lock_escalation(escalation_id if isinstance(escalation_id, Escalation) else str(escalation_id),
                                 actor=actor)
    if not (is_case_requester(actor, escalation)
            or Escalation.objects.visible_to(actor).filter(pk=escalation.pk).exists()):
        raise NotFound("no such escalation", slug="not-found")
    return escalation


def _clean_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("a comment needs a body", errors={"body": ["This field may not be blank."]})
    if len(body) > MAX_COMMENT_LENGTH:
        raise ValidationFailed(f"a comment is at most {MAX_COMMENT_LENGTH} characters",
                               errors={"body": [f"At most {MAX_COMMENT_LENGTH} characters."]})
    return body


@transaction.atomic
def comment_post(*, actor: Actor, escalation: Escalation | str, body: str, question: bool = False,
                 replaces: str | None = None) -> Comment:
    """Add a comment (a question to the requester with `question`; an edit of one's own comment with `replaces`).

    1. Validate the body (1..MAX_COMMENT_LENGTH characters) before anything is read.
    2. Lock the case (404 outside the actor's sight); a question needs an approver who is not the requester,
       on an open case (403 / 409).
    3. Seal the body, store the comment, link it to its data subject, record the audit and outbox events
       (_comment_write).
    """
    body = _clean_body(body)
    case = _lock_for_comment(actor, escalation)
    by_requester = is_case_requester(actor, case)
    if question:
        if actor.user is None or by_requester or not (actor.can(Capability.ESCALATION_DECIDE)
                                                      or actor.can(Capability.ESCALATION_ACKNOWLEDGE)):
            raise PermissionDenied("only an approver may ask the requester a question", slug="approver-only")
        if case.status not in OPEN_STATUSES:
            raise Conflict(f"the escalation is {case.status}: there is nothing left to ask", slug="invalid-state")
    previous = _replaced(actor, case, replaces) if replaces else None
    mentioned = [u for u in members_named(tenant=actor.tenant, usernames=mentioned_usernames(body))
                 if actor.user is None or u.pk != actor.user.pk]
    near = [case.contact, *(case.payload or {}).values()] if isinstance(case.payload, dict) else [case.contact]
    return _comment_write(case, actor=actor, author=actor.actor_label, by_requester=by_requester,
                          kind=Comment.Kind.QUESTION if question else Comment.Kind.COMMENT, body=body,
                          mentions=[u.pk for u in mentioned], replaces=previous, near=near,
                          email=(actor.user.email if actor.user else "") or "")


@transaction.atomic
def comment_answer_by_emailed_requester(*, escalation_id: str, email: str, body: str) -> Comment:
    """The answer of a requester known only by email (escalations.requester_status), written through their signed
    status link: no account, no key, so the comment has no author but `by_requester`.

    1. Validate the body before anything is read (as comment_post).
    2. Lock the case; it must still be that requester's (404 otherwise, as the link's page), open, and awaiting
       their answer (409: nothing to answer).
    3. Write it as comment_post does, the body sealed under the requester's own subject (erasing them shreds it),
       audited as the system job "requester_status_link" with the email masked, never in clear.
    """
    from .services import lock_escalation

    body = _clean_body(body)
    try:
        case = lock_escalation(str(uuid.UUID(str(escalation_id))))
    except (ValueError, Escalation.DoesNotExist):
        raise NotFound("no such escalation", slug="not-found") from None
    if not emailed_requester(case) or not same_person_email(requested_by_of(case), email):
        raise NotFound("no such escalation", slug="not-found")
    if case.status not in OPEN_STATUSES:
        raise Conflict(f"the escalation is {case.status}: there is nothing left to answer", slug="invalid-state")
    if not awaiting_requester(case):
        raise Conflict("no question waits for the requester's answer", slug="nothing-to-answer")
    actor = Actor.for_system(case.tenant, REQUESTER_LINK_JOB)
    return _comment_write(case, actor=actor, author=requester_author(email), by_requester=True,
                          kind=Comment.Kind.COMMENT, body=body, mentions=[], replaces=None, near=(), email=email)


# The audit actor of what a requester known only by email writes through their status link (they have no account).
REQUESTER_LINK_JOB = "requester_status_link"


def requester_author(email: str) -> str:
    """How the conversation, its events and the audit name the emailed requester: masked, never the clear email."""
    masked = mask(email, kind="email")
    return f"requester:{masked}" if masked else "requester"


def _comment_write(case: Escalation, *, actor: Actor, author: str, by_requester: bool, kind: str, body: str,
                   mentions: list[int], replaces: Comment | None, near: Iterable[object], email: str) -> Comment:
    """Seal the body, store the comment, link it to its data subject, record the audit and outbox events."""
    sealed, subject = seal_note(tenant_id=case.tenant_id, value=body, field=BODY_FIELD, near=near, email=email)
    comment = Comment.objects.create(
        tenant_id=case.tenant_id, escalation=case, author_user=actor.user, author_api_key=actor.api_key,
        by_requester=by_requester, kind=kind, body=sealed, mentions=mentions, replaces=replaces)
    record_link(subject=subject, record_type="comment", record_id=comment.pk)
    comment_data = {"id": str(comment.pk), "kind": comment.kind, "author": author,
                    "by_requester": by_requester, "mentions": comment.mentions,
                    "replaces": str(replaces.pk) if replaces else None}
    record_change(case, actor=actor, action=AuditAction.ESCALATION_COMMENTED, before=None,
                  event=events.ESCALATION_COMMENTED, details={"comment": comment_data},
                  event_extra={"comment": comment_data, "awaiting_requester": awaiting_requester(case)})
    return comment


def _replaced(actor: Actor, case: Escalation, replaces: str) -> Comment:
    """The author's own latest version of a comment of this case (an edit of anything else: 404 / 403 / 409)."""
    try:
        previous = Comment.objects.get(pk=uuid.UUID(str(replaces)), escalation=case)
    except (ValueError, Comment.DoesNotExist):
        raise ValidationFailed("no such comment on this escalation", errors={"replaces": ["No such comment."]}) from None
    same_author = (previous.author_user_id == (actor.user.pk if actor.user else None)
                   and previous.author_api_key_id == (actor.api_key.pk if actor.api_key else None))
    if not same_author:
        raise PermissionDenied("only its author may edit a comment", slug="author-only")
    if Comment.objects.filter(replaces=previous).exists():
        raise Conflict("this comment has a newer version: edit that one", slug="stale-comment")
    return previous


def awaiting_requester(escalation: Escalation, comments: list[CommentView] | None = None) -> bool:
    """An open case whose latest question to the requester has had no word from the requester since
    (from `comments`, the conversation already read, when the caller has it)."""
    if escalation.status not in OPEN_STATUSES:
        return False
    if comments is not None:
        asked = [c.comment.created_at for c in comments if c.comment.kind == Comment.Kind.QUESTION]
        return bool(asked) and not any(c.comment.by_requester and c.comment.created_at >= max(asked)
                                       for c in comments)
    last_question = (Comment.objects.filter(escalation=escalation, kind=Comment.Kind.QUESTION)
                     .order_by("-created_at", "-id").values_list("created_at", flat=True).first())
    if last_question is None:
        return False
    return not Comment.objects.filter(escalation=escalation, by_requester=True, created_at__gte=last_question).exists()


@dataclass(frozen=True)
class CommentView:
    """A comment as people and the API read it: its body opened (None once erased), who wrote it, its versions."""

    comment: Comment
    body: str | None
    author: str
    author_name: str
    mentions: list[str]
    replaced_by: str | None

    @property
    def edited(self) -> bool:
        return self.comment.replaces_id is not None


def comments_of(escalation: Escalation, *, limit: int = 500) -> list[CommentView]:
    """The conversation, oldest first: every version (an edit replaces, never erases)."""
    rows = list(Comment.objects.filter(escalation=escalation).select_related("author_user", "author_api_key")
                .order_by("created_at", "id")[:limit])
    subjects = Subjects()
    subjects.prefetch(c.body for c in rows)
    replaced_by = {str(c.replaces_id): str(c.pk) for c in rows if c.replaces_id}
    mentioned_ids = {uid for c in rows for uid in (c.mentions or [])}
    from accounts.models import User

    names = dict(User.objects.filter(pk__in=mentioned_ids).values_list("pk", "username")) if mentioned_ids else {}
    views = []
    requester = ""
    for c in rows:
        if c.author_user is not None:
            author = c.author_user.username
            author_name = c.author_user.get_full_name().strip() or author
        elif c.author_api_key is not None:
            author = f"api_key:{c.author_api_key.name}"
            author_name = c.author_api_key.name
        elif c.by_requester:  # the requester known only by email, through their status link: masked
            requester = requester or requester_author(requested_by_of(escalation))
            author = requester
            author_name = requester.removeprefix("requester:") if ":" in requester else gettext("the requester")
        else:
            author = author_name = "unknown"
        views.append(CommentView(comment=c, body=open_note(c.body, field=BODY_FIELD, subjects=subjects),
                                 author=author, author_name=author_name,
                                 mentions=[names[uid] for uid in c.mentions or [] if uid in names],
                                 replaced_by=replaced_by.get(str(c.pk))))
    return views
