"""Sending one push to one browser: the payload encrypted for it (RFC 8291, aes128gcm, pywebpush), signed
with our VAPID key (RFC 8292, py_vapid), POSTed to its push service through the same pinned, SSRF-checked
connection as webhooks (channels.post_pinned).

The payload the service worker (static/push-sw.js) reads: {title, body, url, tag, escalation?}. `url` is the
absolute case page (TRUSTGUARD_SITE_URL); `tag` makes a newer push about the same case replace the older one.
"""

from __future__ import annotations

import json
import time
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.utils import timezone
from py_vapid import Vapid02
from pywebpush import WebPusher, WebPushException

from trustguard.crypto import SecretUnreadable
from trustguard.vapid import vapid_keys

from ..channels import SendFailed, SendResult, post_pinned
from ..models import Message, PushSubscription
from .subscriptions import SubscriptionInfo, push_service_of, push_subscription_expired, subscription_info

# Push services accept at least 4096 bytes of encrypted payload; a notification's text is cut well below.
MAX_BODY_CHARS = 600
VAPID_TOKEN_SECONDS = 12 * 3600  # RFC 8292: at most 24 h
GONE = (404, 410)


def push_address(subscription: PushSubscription) -> str:
    """A push message's to_address: '<push service host>/<subscription id>' (no endpoint: that is personal)."""
    host = subscription.push_service.split("://", 1)[-1]
    return f"{host}/{subscription.pk}"


def push_breaker_target(address: str) -> str:
    """One circuit breaker per push service (fcm.googleapis.com, updates.push.services.mozilla.com, ...)."""
    return "push:" + address.rsplit("/", 1)[0]


def push_service_breaker_target(push_service: str) -> str:
    """The breaker of a push service given by its origin (PushSubscription.push_service): the same name as above."""
    return "push:" + push_service.split("://", 1)[-1]


def push_payload(message: Message) -> dict[str, Any]:
    data = message.data or {}
    body = message.readable_body()
    if len(body) > MAX_BODY_CHARS:
        body = body[:MAX_BODY_CHARS - 1].rstrip() + "…"
    payload: dict[str, Any] = {"title": message.subject or "TrustGuard", "body": body,
                               "url": data.get("url") or settings.SITE_URL + "/",
                               "tag": str(data.get("escalation") or message.pk)}
    if data.get("escalation"):
        payload["escalation"] = str(data["escalation"])
    return payload


def _vapid_subject() -> str:
    if settings.VAPID_SUBJECT:
        return str(settings.VAPID_SUBJECT)
    address = parseaddr(str(settings.DEFAULT_FROM_EMAIL or ""))[1]
    return f"mailto:{address}" if address else settings.SITE_URL


def push_request(*, info: SubscriptionInfo, payload: dict[str, Any], ttl: int, urgency: str = "normal") -> int:
    """Encrypt `payload` for the browser, sign, POST; the push service's HTTP status."""
    keys = vapid_keys()
    if keys is None:
        raise SendFailed("Web Push is not set up on this server (TRUSTGUARD_VAPID_PRIVATE_KEY)")
    try:
        body = WebPusher(info.as_dict()).encode(json.dumps(payload, ensure_ascii=False).encode(), "aes128gcm")["body"]
    except (WebPushException, ValueError) as exc:
        raise SendFailed(f"cannot encrypt for this browser: {type(exc).__name__}", permanent=True) from None
    claims = {"aud": push_service_of(info.endpoint), "exp": int(time.time()) + VAPID_TOKEN_SECONDS,
              "sub": _vapid_subject()}
    headers = {**Vapid02(keys.private_key).sign(claims), "content-encoding": "aes128gcm",
               "content-type": "application/octet-stream", "ttl": str(ttl), "urgency": urgency,
               "user-agent": "TrustGuard-Push/1.0"}
    return post_pinned(url=info.endpoint, content=body, headers=headers)


def push_deliver(message: Message) -> SendResult:
    """Send one push message to the browser it names. A subscription that is gone (removed by its person, or
    404/410 from the push service, which removes it) is a permanent failure: no retry, no breaker count."""
    subscription_id = message.to_address.rsplit("/", 1)[-1]
    subscription = PushSubscription.objects.filter(pk=subscription_id).first()
    if subscription is None:
        raise SendFailed("the browser's push subscription was removed", permanent=True)
    try:
        info = subscription_info(subscription)
    except SecretUnreadable as exc:
        raise SendFailed(f"the push subscription cannot be read: {exc}", permanent=True) from None
    urgency = "high" if (message.data or {}).get("action") else "normal"
    status = push_request(info=info, payload=push_payload(message), ttl=settings.PUSH_TTL_SECONDS, urgency=urgency)
    if status in GONE:
        push_subscription_expired(subscription_id=subscription.pk, tenant_id=message.tenant_id, status_code=status)
        raise SendFailed(f"the push service answered HTTP {status}: the subscription expired and was removed",
                         status_code=status, permanent=True)
    if not 200 <= status < 300:
        raise SendFailed(f"the push service answered HTTP {status}", status_code=status)
    PushSubscription.objects.filter(pk=subscription.pk).update(last_delivered_at=timezone.now())
    return SendResult(provider="push", provider_message_id="", status_code=status)
