"""Personal data on pages: masked by default; `privacy.manage` may reveal (subjects.views, audited)."""

from __future__ import annotations

from typing import Any

from django import template

from privacy import vault

register = template.Library()


@register.simple_tag
def contact_fields(escalation: Any) -> list[vault.FieldView]:
    """The customer contact, masked (or the reason it cannot be read: erased, key missing, altered)."""
    return vault.contact_views(getattr(escalation, "contact", None))


@register.simple_tag
def masked_payload_items(escalation: Any) -> list[tuple[str, Any]]:
    """The payload as the case page lists it, personal fields masked."""
    shown = vault.payload_for_display(getattr(escalation, "payload", None))
    return [(k, v) for k, v in shown.items() if k != "attachments"]


@register.simple_tag
def has_sealed_values(escalation: Any) -> bool:
    return bool(getattr(escalation, "contact", None)) or bool(vault.sealed_payload_fields(getattr(escalation, "payload", None)))


@register.simple_tag(takes_context=True)
def can_reveal(context: dict[str, Any]) -> bool:
    actor = getattr(context.get("request"), "actor", None)
    return bool(actor is not None and actor.can("privacy.manage"))


@register.simple_tag
def requester_shown(escalation: Any) -> str:
    """The requester's email as a page shows it: masked when it names someone outside the tenant."""
    stored = getattr(escalation, "requested_by_email", "") or ""
    if stored != vault.SEALED_REQUESTER:
        return stored
    return vault.mask(vault.requested_by_of(escalation), kind="email") or "(erased)"
