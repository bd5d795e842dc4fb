"""Messages to people: email, SMS, in-app and Web Push, rendered from templates.

- dispatch_messages: the relay's fan-out of a batch of events to the people its resolvers name (one
  message per person, channel and event; each distinct text rendered once), and their deliveries.
- render_message: notifications/<channel>/<audience>/<event type>.txt (.subject.txt, .html for email),
  falling back to the audience's, the channel's and the global defaults.
- message_send: one personal message (a one-time code, a notice), queued in the caller's transaction.

Push: one message (and delivery) per browser the person enabled (notifications.push), so each browser has its
own status, retries and dead letter; a person with push in the policy's channels but no browser gets none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.template import Context, Engine, Template
from django.template.exceptions import TemplateDoesNotExist, TemplateSyntaxError
from django.utils import timezone, translation
from django.utils.html import linebreaks

from trustguard.bulk import bulk_insert_columns
from trustguard.crypto import encrypt
from trustguard.errors import NotFound, ValidationFailed
from trustguard.ids import uuid7
from trustguard.jsonutil import to_jsonable
from trustguard.vapid import vapid_keys
from trustguard.zones import zone_named

from .deliveries.queue import address_key, aggregate_key, kick_deliveries
from .models import Channel, Delivery, Message, MessageTemplate, OutboxEvent, PushSubscription
from .outbox.catalogue import EventIs
from .preferences import PersonRules
from .push.sender import push_address
from .registry import Recipient

logger = logging.getLogger(__name__)


@dataclass
class _People:
    """The active users among a batch's recipients, their channels and quiet hours (preferences.PersonRules), and,
    when push is asked for and set up, their browsers' push addresses (one more query)."""

    users: dict[int, Any]
    rules: PersonRules
    push: dict[int, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, recipients: Iterable[Recipient], tenant_ids: Iterable[int]) -> _People:
        recipients = list(recipients)
        user_ids = {r.user_id for r in recipients if r.user_id is not None}
        if not user_ids:
            return cls({}, PersonRules({}, {}, {}))
        users = {u.pk: u for u in get_user_model().objects.filter(pk__in=user_ids, is_active=True)}
        push: dict[int, list[str]] = {}
        if vapid_keys() is not None and any(Channel.PUSH in r.channels for r in recipients if r.user_id in users):
            for subscription in PushSubscription.objects.filter(user_id__in=list(users)).only(
                    "id", "user_id", "push_service").order_by("created_at"):
                push.setdefault(subscription.user_id, []).append(push_address(subscription))
        return cls(users, PersonRules.load(users, tenant_ids), push)


_MESSAGE_COLUMNS = ("id", "tenant_id", "channel", "purpose", "audience", "event_id", "user_id", "to_address",
                    "subject", "body", "body_html", "data", "sent_at", "provider")
_DELIVERY_COLUMNS = ("tenant_id", "kind", "message_id", "event_id", "order_key", "aggregate_key", "event_seq",
                     "next_attempt_at")


def dispatch_messages(events: Sequence[OutboxEvent],
                       resolve: Callable[[Sequence[OutboxEvent]], dict[int, list[Recipient]]],
                       now: datetime) -> list[int]:
    """Messages (one per person, channel and event) and their deliveries for `events`, inserted in bulk;
    the new deliveries' ids."""
    recipients = resolve(events)
    people = _People.load((r for found in recipients.values() for r in found), {e.tenant_id for e in events})
    # Recipients that share a context (e.g. every member of the assigned role) get the same text:
    # render it once per event, channel and audience.
    rendered: dict[tuple[int, str, str, int, str, str], Rendered] = {}
    messages: dict[str, list[Any]] = {name: [] for name in _MESSAGE_COLUMNS}
    deliveries: dict[str, list[Any]] = {name: [] for name in _DELIVERY_COLUMNS}
    for event in events:
        envelope: dict[str, object] | None = None
        seen: set[tuple[str, str]] = set()
        for recipient in recipients.get(event.pk, ()):
            zone = zone_named(recipient.time_zone)
            # Quiet hours defer a person's deliveries to their end (not the in-app item: it makes no sound).
            hold = (people.rules.hold_until(recipient.user_id, event.tenant_id, now, critical=recipient.critical,
                                            zone=zone) if recipient.user_id is not None else None)
            for channel, address in _addresses(recipient, people, event.tenant_id):
                if (channel, address.lower()) in seen:
                    continue  # one person, one message per channel, even if reached by two routes
                seen.add((channel, address.lower()))
                key = (event.pk, channel, recipient.audience, id(recipient.context), recipient.language, zone.key)
                if key not in rendered:
                    envelope = envelope or event.envelope()
                    context = {**recipient.context, "event": envelope, "audience": recipient.audience}
                    rendered[key] = render_message(channel=channel, audience=recipient.audience,
                                                   event_type=event.type, context=context,
                                                   tenant_id=event.tenant_id, language=recipient.language,
                                                   time_zone=zone)
                subject, body, html = rendered[key]
                in_app = channel == Channel.IN_APP
                message_id = uuid7()
                for name, value in zip(_MESSAGE_COLUMNS, (
                        message_id, event.tenant_id, channel, event.type, recipient.audience, event.pk,
                        recipient.user_id, "" if in_app else address, subject, body, html,
                        to_jsonable(dict(recipient.data)), now if in_app else None, "in_app" if in_app else ""),
                        strict=True):
                    messages[name].append(value)
                if not in_app:
                    for name, value in zip(_DELIVERY_COLUMNS, (
                            event.tenant_id, channel, message_id, event.pk, f"{channel}:{address_key(address)}",
                            aggregate_key(event), event.pk, hold or now), strict=True):
                        deliveries[name].append(value)
    bulk_insert_columns(Message, messages)
    return bulk_insert_columns(Delivery, deliveries)


def _addresses(recipient: Recipient, people: _People, tenant_id: int) -> list[tuple[str, str]]:
    """(channel, address) pairs for a recipient, after their channel preferences (or their tenant's defaults)."""
    from trustguard.phones import normalize_phone

    user = None
    if recipient.user_id is not None:
        user = people.users.get(recipient.user_id)
        if user is None:
            return []  # gone or deactivated
    out: list[tuple[str, str]] = []
    for channel in recipient.channels:
        if user is not None and not people.rules.channel_on(user.pk, tenant_id, channel):
            continue
        if channel == Channel.PUSH:
            out.extend((channel, address) for address in (people.push.get(user.pk, []) if user else []))
            continue
        if channel == Channel.EMAIL:
            address = recipient.email or (user.email if user else "")
        elif channel == Channel.SMS:
            raw = recipient.phone or (getattr(user, "phone_number", "") if user else "")
            try:
                address = normalize_phone(raw) if raw else ""
            except ValidationFailed:
                logger.warning("skipping SMS to recipient %s: not a valid phone number", recipient.user_id or "-")
                address = ""
        elif channel == Channel.IN_APP:
            address = f"user:{user.pk}" if user else ""
        else:
            address = ""
        if address:
            out.append((channel, address))
    return out


@lru_cache(maxsize=2)
def _template_engine(html: bool = False) -> Engine:
    # Plain-text messages: no HTML autoescaping ("O&#x27;Brien" in an SMS helps nobody). HTML parts escape.
    # {% translate %} / {% blocktranslate %} without a {% load %}: messages are written in the recipient's language.
    return Engine(app_dirs=True, autoescape=html, builtins=["django.templatetags.i18n"])


@lru_cache(maxsize=1024)
def _message_template(channel: str, audience: str, event_type: str, suffix: str) -> Template | None:
    # Which file answers is fixed for the process (as in Django's cached loader): look it up once.
    names = [f"notifications/{channel}/{audience}/{event_type}{suffix}",
             f"notifications/{channel}/{audience}/default{suffix}",
             f"notifications/{channel}/default{suffix}",
             f"notifications/default{suffix}"]
    try:
        return _template_engine(suffix.endswith(".html")).select_template(names)
    except TemplateDoesNotExist:
        return None


class Rendered(NamedTuple):
    """A message as its recipient reads it: subject, text body, and (email) the HTML part."""

    subject: str
    body: str
    html: str = ""


OVERRIDES_CACHE_SECONDS = 300


def _overrides_key(tenant_id: int) -> str:
    return f"tg:message-templates:{tenant_id}"


def message_templates_changed(tenant_id: int) -> None:
    """Forget a tenant's cached template overrides (however a template is saved or deleted: the signals below)."""
    cache.delete(_overrides_key(tenant_id))


@receiver([post_save, post_delete], sender=MessageTemplate, dispatch_uid="message-template-changed")
def _forget_templates(sender: type, instance: MessageTemplate, **kwargs: Any) -> None:
    message_templates_changed(instance.tenant_id)


def _override(tenant_id: int, channel: str, audience: str, event_type: str, language: str) -> tuple[str, str] | None:
    """The tenant's own (subject, body) for this message: its event's before its default, its language's
    before the any-language one."""
    rows = cache.get(_overrides_key(tenant_id))
    if rows is None:
        rows = list(MessageTemplate.objects.filter(tenant_id=tenant_id).values_list(
            "channel", "audience", "event_type", "language", "subject", "body"))
        cache.set(_overrides_key(tenant_id), rows, OVERRIDES_CACHE_SECONDS)
    found = {(r[2], r[3]): (r[4], r[5]) for r in rows if r[0] == channel and r[1] == audience}
    for candidate in ((event_type, language), (event_type, ""), ("default", language), ("default", "")):
        if candidate in found:
            return found[candidate]
    return None


def render_message(*, channel: str, audience: str, event_type: str, context: dict[str, Any],
                   tenant_id: int | None = None, language: str = "", time_zone: tzinfo | None = None) -> Rendered:
    """The message in `language` (blank: the site's), its times in `time_zone` (None: the site's): the tenant's
    own template (MessageTemplate) where it set one, else notifications/<channel>/<audience>/<event>.txt
    (.subject.txt, and .html for email), falling back to the audience's, the channel's and the global defaults."""
    # Templates choose their wording by the catalogue entry (`event_is.ESCALATION_REMINDER`), never by spelling a type.
    context = {**context, "event_is": EventIs(event_type)}
    with translation.override(language or settings.LANGUAGE_CODE), timezone.override(time_zone):
        override = _override(tenant_id, channel, audience, event_type, language) if tenant_id is not None else None
        if override is not None:
            try:
                return _render_override(channel, audience, event_type, context, override)
            except TemplateSyntaxError:
                # The admin refuses a template that does not parse; one saved before a Django upgrade falls back.
                logger.warning("tenant %s: message template %s/%s/%s does not parse; using the standard one",
                               tenant_id, channel, audience, event_type)
        return _render_files(channel, audience, event_type, context)


def _render_override(channel: str, audience: str, event_type: str, context: dict[str, Any],
                     override: tuple[str, str]) -> Rendered:
    subject_text, body_text = override
    engine = _template_engine(False)
    body = engine.from_string(body_text).render(_context(context)).strip()
    if subject_text.strip():
        subject = " ".join(engine.from_string(subject_text).render(_context(context)).split())[:300]
    else:
        subject = _render_files(channel, audience, event_type, context).subject
    html = linebreaks(body, autoescape=True) if channel == Channel.EMAIL else ""
    return Rendered(subject, body, html)


def _render_files(channel: str, audience: str, event_type: str, context: dict[str, Any]) -> Rendered:
    body_template = _message_template(channel, audience, event_type, ".txt")
    if body_template is None:
        raise TemplateDoesNotExist(f"notifications/{channel}/{audience}/{event_type}.txt and its defaults")
    body = body_template.render(_context(context)).strip()
    subject_template = _message_template(channel, audience, event_type, ".subject.txt")
    subject = " ".join(subject_template.render(_context(context)).split())[:300] if subject_template else ""
    html = ""
    if channel == Channel.EMAIL:
        html_template = _message_template(channel, audience, event_type, ".html")
        if html_template is not None:
            html = html_template.render(_context({**context, "subject": subject}, html=True)).strip()
    return Rendered(subject, body, html)


def _context(values: dict[str, Any], *, html: bool = False) -> Context:
    # The engine's autoescape applies only to contexts built with it in mind: say it here too.
    return Context(values, autoescape=html)


def message_send(*, tenant_id: int, channel: str, subject: str, body: str, purpose: str,
                 to_user_id: int | None = None, to_address: str = "", sensitive: bool = False,
                 valid_until: datetime | None = None) -> Message:
    """Queue one personal message in the current transaction; it is sent after commit, at least once
    (until `valid_until`, when given: a one-time code that arrives after it expired only misleads).

    A sensitive body (a one-time code) is encrypted at rest, never logged, and blanked once delivered.
    """
    from trustguard.phones import normalize_phone

    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("message_send must run inside a transaction (the message exists iff it commits)")
    if channel not in Channel.values or channel == Channel.PUSH:
        # Push goes to every browser of a person (one message each): it comes only from events' recipients.
        raise ValidationFailed(f"unknown channel {channel!r}", errors={"channel": ["Choose email, sms or in_app."]})
    user = None
    if to_user_id is not None:
        user = get_user_model().objects.filter(pk=to_user_id).first()
        if user is None:
            raise NotFound("no such person")
    address = to_address.strip()
    if channel == Channel.EMAIL:
        address = address or (user.email if user else "")
    elif channel == Channel.SMS:
        raw = address or (getattr(user, "phone_number", "") if user else "")
        address = normalize_phone(raw, field="phone") if raw else ""
    elif user is None:
        raise ValidationFailed("an in-app message needs a person", errors={"to_user_id": ["Required for in_app."]})
    if channel != Channel.IN_APP and not address:
        raise ValidationFailed(f"no {channel} address for this person", slug="no-address",
                               errors={"channel": [f"The person has no {channel} address."]})
    now = timezone.now()
    message = Message.objects.create(
        tenant_id=tenant_id, channel=channel, purpose=purpose, user=user,
        to_address="" if channel == Channel.IN_APP else address, subject=subject[:300],
        body=encrypt(body) if sensitive else body, sensitive=sensitive, valid_until=valid_until,
        sent_at=now if channel == Channel.IN_APP else None, provider="in_app" if channel == Channel.IN_APP else "")
    if channel != Channel.IN_APP:
        delivery = Delivery.objects.create(tenant_id=tenant_id, kind=channel, message=message, next_attempt_at=now)
        transaction.on_commit(lambda: kick_deliveries([delivery.pk]))
    return message
