"""Template tags for the Web Push includes (_push_enable.html, _push_devices.html): self-contained, so any
page (the queue, the person's settings) can include them without its view knowing about push."""

from __future__ import annotations

from typing import Any

from django import template

from notifications.push.subscriptions import push_subscriptions_of
from trustguard.vapid import vapid_keys

register = template.Library()


@register.simple_tag
def push_public_key() -> str:
    """The VAPID public key for PushManager.subscribe; empty when push is not set up (the control hides)."""
    keys = vapid_keys()
    return keys.public_key if keys else ""


@register.simple_tag
def push_devices_of(user: Any) -> list[Any]:
    return list(push_subscriptions_of(user_id=user.pk)) if getattr(user, "pk", None) else []
